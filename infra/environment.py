"""The environment every chat function gets, built in one place for the CDK stack and the local stack.

Both pass their own values (CloudFormation tokens on AWS, real names locally), so the variables a
handler sees cannot differ between the two.
"""

from __future__ import annotations

from chat import config


def function_environment(
    *,
    connections_table: str,
    presence_table: str,
    messages_table: str,
    user_pool_id: str,
    user_pool_client_id: str,
    region: str,
    url_suffix: str = config.DEFAULT_URL_SUFFIX,
    service_name: str = "chat",
    metrics_namespace: str = "ServerlessChat",
    retention_days: int = config.DEFAULT_RETENTION_DAYS,
    fanout_workers: int = config.DEFAULT_FANOUT_WORKERS,
    management_endpoint: str | None = None,
    jwks_url: str | None = None,
    fanout_function_name: str | None = None,
    presence_grace_seconds: int = config.DEFAULT_PRESENCE_GRACE_SECONDS,
    presence_queue_url: str | None = None,
) -> dict[str, str]:
    """The variables of ``chat.config`` plus Powertools' own, as strings.

    ``url_suffix`` is the partition's DNS suffix (the stack passes ``AWS::URLSuffix``).
    """
    env = {
        config.CONNECTIONS_TABLE: connections_table,
        config.PRESENCE_TABLE: presence_table,
        config.MESSAGES_TABLE: messages_table,
        config.USER_POOL_ID: user_pool_id,
        config.USER_POOL_CLIENT_ID: user_pool_client_id,
        # Cognito's issuer is the same on AWS and in moto; only where the keys are fetched differs.
        config.TOKEN_ISSUER: f"https://cognito-idp.{region}.{url_suffix}/{user_pool_id}",
        config.AWS_URL_SUFFIX: url_suffix,
        config.RETENTION_DAYS: str(retention_days),
        config.FANOUT_WORKERS: str(fanout_workers),
        config.PRESENCE_GRACE_SECONDS: str(presence_grace_seconds),
        "POWERTOOLS_SERVICE_NAME": service_name,
        "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if management_endpoint:
        env[config.MANAGEMENT_ENDPOINT] = management_endpoint
    if jwks_url:
        env[config.JWKS_URL] = jwks_url
    if fanout_function_name:
        env[config.FANOUT_FUNCTION_NAME] = fanout_function_name
    if presence_queue_url:
        env[config.PRESENCE_QUEUE_URL] = presence_queue_url
    return env
