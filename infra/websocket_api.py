"""The WebSocket API: routes to functions, the token authorizer on $connect, one throttled stage.

WebSocket APIs run an authorizer only on ``$connect``; the connection it admits carries the
authorizer's context (the username) on every later event, so the other routes need none.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.functions import LOG_RETENTION

TOKEN_IDENTITY_SOURCE = f"route.request.querystring.{constants.TOKEN_QUERY_PARAMETER}"
# The stage's throttle is shared by every client of the stage, so it is a ceiling sized for the
# whole audience (fairness between users is the per-user budgets' job, chat.limits):
#   rate  = expectedUsers x REQUESTS_PER_USER_PER_SECOND, at least MIN_STAGE_RATE_LIMIT
#   burst = 2 x rate
# both capped at the account's default throttle quota per Region (10,000 requests/s with a
# 5,000-request bucket, shared by every API in the account and by @connections posts); a stage
# cannot throttle above the account level anyway.
DEFAULT_EXPECTED_USERS = 5000
# A user's client at its busiest: a message every 5 s, its acks, pings, a sync after reconnects.
REQUESTS_PER_USER_PER_SECOND = 0.2
MIN_STAGE_RATE_LIMIT = 100
ACCOUNT_RATE_LIMIT = 10_000
ACCOUNT_BURST_LIMIT = 5_000


def stage_throttle(expected_users: int) -> apigwv2.ThrottleSettings:
    """Steady requests per second and burst for the stage, from the audience it is built for."""
    if expected_users < 1:
        raise ValueError(f"expected users must be at least 1, got {expected_users}")
    rate = min(
        ACCOUNT_RATE_LIMIT, max(MIN_STAGE_RATE_LIMIT, round(expected_users * REQUESTS_PER_USER_PER_SECOND))
    )
    return apigwv2.ThrottleSettings(rate_limit=rate, burst_limit=min(ACCOUNT_BURST_LIMIT, 2 * rate))


# One JSON object per line in the access log, with what a reader needs to follow a connection.
# Only variables the WebSocket logging page lists (infra/aws_reference/): API Gateway refuses to
# create a stage whose format names another one.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "connectionId": "$context.connectionId",
    "routeKey": "$context.routeKey",
    "eventType": "$context.eventType",
    "messageId": "$context.messageId",
    "status": "$context.status",
    "user": "$context.authorizer.username",
    "sourceIp": "$context.identity.sourceIp",
    "authorizerError": "$context.authorizer.error",
    "integrationError": "$context.integration.error",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integrationLatency",
}


class ChatWebSocketApi(Construct):
    """The API, its ``prod`` stage and the stage's access log."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        route_functions: dict[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction,
        set_account_logs_role: bool,
        expected_users: int = DEFAULT_EXPECTED_USERS,
    ) -> None:
        """``route_functions`` maps each route key of ``constants.ROUTES`` to its function."""
        super().__init__(scope, construct_id)
        authorizer = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer", authorizer_function, identity_source=[TOKEN_IDENTITY_SOURCE]
        )
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            route_selection_expression=constants.ROUTE_SELECTION_EXPRESSION,
            description="Serverless chat: WebSocket protocol v1",
        )
        for route in constants.ROUTES:
            self.api.add_route(
                route.key,
                integration=integrations.WebSocketLambdaIntegration(
                    f"{route.function_id}Integration", route_functions[route.key]
                ),
                # Only $connect can be authorized; see the module docstring.
                authorizer=authorizer if route.key == "$connect" else None,
            )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=constants.STAGE_NAME,
            auto_deploy=True,
            throttle=stage_throttle(expected_users),
            access_log_settings=_JsonAccessLog(self.access_logs),
        )
        if set_account_logs_role:
            self.stage.node.add_dependency(_account_logs_role(self))

    @property
    def url(self) -> str:
        """``wss://<api-id>.execute-api.<region>.amazonaws.com/prod``."""
        return self.stage.url

    def grant_manage_connections(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` post to, read and close this API's connections (and no other API's)."""
        self.api.grant_manage_connections(grantee)


@jsii.implements(apigwv2.IAccessLogSettings)
class _JsonAccessLog:
    """Access logging to a CloudWatch log group, one JSON object per request."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._log_group = log_group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._log_group)

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


def _account_logs_role(scope: Construct) -> apigateway.CfnAccount:
    """The role API Gateway uses to write WebSocket logs: an account-wide (per region) setting.

    A stage with logging fails to deploy in an account that never set it. Both are kept when the
    stack is deleted, because other APIs in the account may rely on the setting by then.
    """
    role = iam.Role(
        scope,
        "ApiGatewayLogsRole",
        assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            )
        ],
    )
    role.apply_removal_policy(RemovalPolicy.RETAIN)
    account = apigateway.CfnAccount(scope, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
    account.apply_removal_policy(RemovalPolicy.RETAIN)
    return account
