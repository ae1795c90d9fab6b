"""DynamoDB and Cognito for the local stack: moto's server in this process, set up from the stack's
own definitions, and the environment that points the handlers at it.

The tables come from ``infra/schema.py`` and the user pool from ``infra/user_pool_rules.py``, the same
data the CDK stack builds from, so the two cannot drift apart. moto keeps its state per process:
one local stack per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import boto3
from chat import config

from infra import constants, schema, user_pool_rules
from infra.environment import function_environment
from local_stack.moto_server import AtomicMotoServer
from local_stack.queues import Queues, create_queues

REGION = "us-east-1"
# moto's default account; ARNs in events and contexts use it too.
ACCOUNT_ID = "123456789012"
# Credentials moto accepts and AWS would not: nothing local can reach a real account by mistake.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
APP_CLIENT_NAME = "AppClient"


@dataclass(frozen=True)
class Resources:
    """What was created in moto, by name."""

    endpoint: str
    table_names: dict[str, str]
    user_pool_id: str
    user_pool_client_id: str
    presence_queues: Queues

    @property
    def jwks_url(self) -> str:
        # moto's server mode publishes the pool's keys here (AWS: on the issuer's URL).
        return f"{self.endpoint}/{self.user_pool_id}/.well-known/jwks.json"


def start_moto(host: str = "127.0.0.1") -> tuple[AtomicMotoServer, str]:
    """moto's server on a free port of ``host``; its URL."""
    # werkzeug logs every request at INFO: the console is for the chat's own lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = AtomicMotoServer(host).start()
    return server, server.url


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **DUMMY_CREDENTIALS)


def find_resources(endpoint: str) -> Resources | None:
    """The tables and user pool a previous run created (restored from the data directory), if any.

    They are found by name (``<stack>-<suffix>`` for the pool, ``<stack>-<table>-<suffix>`` for
    the tables), so ids stay those of the first run: pages and CLIs open across a restart keep
    signing in with the same app client.
    """
    dynamodb = client("dynamodb", endpoint)
    cognito = client("cognito-idp", endpoint)
    tables = set(dynamodb.list_tables(Limit=100)["TableNames"])
    prefix = f"{constants.STACK_NAME}-"
    for pool in cognito.list_user_pools(MaxResults=60)["UserPools"]:
        suffix = pool["Name"].removeprefix(prefix)
        names = {spec.logical_id: f"{prefix}{spec.logical_id}-{suffix}" for spec in schema.TABLES}
        if not pool["Name"].startswith(prefix) or not set(names.values()) <= tables:
            continue
        clients = cognito.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)["UserPoolClients"]
        ours = [c for c in clients if c["ClientName"] == APP_CLIENT_NAME]
        if ours:
            # The presence-check queue is not kept (its checks concern connections that are gone).
            queues = create_queues(client("sqs", endpoint), name=_queue_name(suffix))
            return Resources(endpoint, names, pool["Id"], ours[0]["ClientId"], queues)
    return None


def name_suffix(resources: Resources) -> str:
    """The suffix the resources were named with (the API id of the run that created them)."""
    return resources.table_names[schema.CONNECTIONS.logical_id].rsplit("-", 1)[1]


def forget_connections(resources: Resources) -> int:
    """Delete every Connections item and Presence item: their sockets died with the last run."""
    dynamodb = client("dynamodb", resources.endpoint)
    deleted = 0
    for spec in (schema.CONNECTIONS, schema.PRESENCE):
        table = resources.table_names[spec.logical_id]
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression="#k", ExpressionAttributeNames={"#k": spec.partition_key}
        ):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=table, Key=item)
                deleted += 1
    return deleted


def create_resources(endpoint: str, *, name_suffix: str) -> Resources:
    """The tables (TTL on) and the user pool with its app client."""
    dynamodb = client("dynamodb", endpoint)
    names = {}
    for spec in schema.TABLES:
        name = f"{constants.STACK_NAME}-{spec.logical_id}-{name_suffix}"
        dynamodb.create_table(**schema.create_table_request(spec, name))
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )
        names[spec.logical_id] = name
    cognito = client("cognito-idp", endpoint)
    pool_id = cognito.create_user_pool(**user_pool_definition(f"{constants.STACK_NAME}-{name_suffix}"))[
        "UserPool"
    ]["Id"]
    client_id = cognito.create_user_pool_client(**app_client_definition(pool_id))["UserPoolClient"][
        "ClientId"
    ]
    queues = create_queues(client("sqs", endpoint), name=_queue_name(name_suffix))
    return Resources(endpoint, names, pool_id, client_id, queues)


def _queue_name(name_suffix: str) -> str:
    return f"{constants.STACK_NAME}-PresenceChecks-{name_suffix}"


def user_pool_definition(name: str) -> dict[str, Any]:
    """CreateUserPool's arguments: usernames compared case-insensitively, the password policy."""
    return {
        "PoolName": name,
        "UsernameConfiguration": {"CaseSensitive": False},
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": user_pool_rules.PASSWORD_MIN_LENGTH,
                "RequireLowercase": user_pool_rules.PASSWORD_REQUIRE["lowercase"],
                "RequireUppercase": user_pool_rules.PASSWORD_REQUIRE["uppercase"],
                "RequireNumbers": user_pool_rules.PASSWORD_REQUIRE["digits"],
                "RequireSymbols": user_pool_rules.PASSWORD_REQUIRE["symbols"],
            }
        },
        "AutoVerifiedAttributes": ["email"],
    }


def app_client_definition(pool_id: str) -> dict[str, Any]:
    """CreateUserPoolClient's arguments: no secret (browsers and CLIs cannot keep one)."""
    return {
        "UserPoolId": pool_id,
        "ClientName": APP_CLIENT_NAME,
        "GenerateSecret": False,
        "ExplicitAuthFlows": list(user_pool_rules.AUTH_FLOWS),
        "AccessTokenValidity": user_pool_rules.ACCESS_TOKEN_MINUTES,
        "IdTokenValidity": user_pool_rules.ID_TOKEN_MINUTES,
        "RefreshTokenValidity": user_pool_rules.REFRESH_TOKEN_DAYS,
        "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
        "PreventUserExistenceErrors": "ENABLED",
    }


def process_environment(
    resources: Resources,
    *,
    management_endpoint: str,
    log_level: str = "INFO",
    presence_grace_seconds: int = config.DEFAULT_PRESENCE_GRACE_SECONDS,
) -> dict[str, str]:
    """Every variable the handlers read: the deployed functions' own plus what points at moto."""
    env = function_environment(
        connections_table=resources.table_names[schema.CONNECTIONS.logical_id],
        presence_table=resources.table_names[schema.PRESENCE.logical_id],
        messages_table=resources.table_names[schema.MESSAGES.logical_id],
        user_pool_id=resources.user_pool_id,
        user_pool_client_id=resources.user_pool_client_id,
        region=REGION,
        management_endpoint=management_endpoint,
        jwks_url=resources.jwks_url,
        presence_grace_seconds=presence_grace_seconds,
        presence_queue_url=resources.presence_queues.url,
    )
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_ENDPOINT_URL_DYNAMODB": resources.endpoint,
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": resources.endpoint,
            "AWS_ENDPOINT_URL_SQS": resources.endpoint,
            # EMF metrics on stdout would drown the console.
            "POWERTOOLS_METRICS_DISABLED": "true",
            # Lambda's logs go to CloudWatch; here they share the console, so the default is quieter.
            "POWERTOOLS_LOG_LEVEL": log_level,
            # The pre-sign-up trigger's own switch, as the stack sets it by default.
            config.AUTO_CONFIRM: "true",
        }
    )
    return env
