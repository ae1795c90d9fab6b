"""``ChatStack``: the whole backend in one CloudFormation stack.

Reading order: tables, identity, functions, API, web client, grants, outputs. Options come from CDK context
(``cdk.json`` or ``-c key=value``); see ``infra/constants.py`` and ``infra/user_pool_rules.py`` for the keys.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from chat import config
from chat.config import MAX_PRESENCE_GRACE_SECONDS
from constructs import Construct

from infra import constants, environment, nag, packaging, permissions, user_pool_rules, websocket_api
from infra.functions import ChatFunctions
from infra.presence import PresenceQueue
from infra.tables import ChatTables
from infra.user_pool import ChatUserPool
from infra.web_client import ChatWebClient
from infra.websocket_api import ChatWebSocketApi


class ChatStack(Stack):
    """The chat backend: WebSocket API, Lambda functions, DynamoDB tables, Cognito user pool, and
    (unless ``-c webClient=false``) the web client on S3 and CloudFront."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Serverless real-time chat: API Gateway WebSocket API, Lambda, DynamoDB, Cognito",
            **kwargs,
        )
        retain_data = context_flag(self, constants.RETAIN_DATA_CONTEXT_KEY, default=True)
        code = lambda_.Code.from_asset(str(packaging.build_asset()))

        self.tables = ChatTables(self, "Tables", retain_data=retain_data)
        self.identity = ChatUserPool(
            self,
            "Identity",
            code=code,
            auto_confirm=context_flag(self, user_pool_rules.AUTO_CONFIRM_CONTEXT_KEY, default=True),
            retain_data=retain_data,
        )
        self.presence_grace_seconds = context_seconds(
            self, constants.PRESENCE_GRACE_CONTEXT_KEY, default=config.DEFAULT_PRESENCE_GRACE_SECONDS
        )
        self.presence = PresenceQueue(self, "Presence")
        self.functions = ChatFunctions(self, "Functions", code=code, environment=self._function_environment())
        self.presence.trigger(self.functions.presence_check)
        self.websocket = ChatWebSocketApi(
            self,
            "WebSocket",
            route_functions={route.key: self.functions.for_route(route.key) for route in constants.ROUTES},
            authorizer_function=self.functions.authorizer,
            set_account_logs_role=context_flag(
                self, constants.API_GATEWAY_LOGS_ROLE_CONTEXT_KEY, default=True
            ),
            expected_users=context_count(
                self, constants.EXPECTED_USERS_CONTEXT_KEY, default=websocket_api.DEFAULT_EXPECTED_USERS
            ),
        )
        self.web_client = (
            ChatWebClient(
                self,
                "WebClient",
                websocket_url=self.websocket.url,
                user_pool_id=self.identity.user_pool.user_pool_id,
                user_pool_client_id=self.identity.client.user_pool_client_id,
            )
            if context_flag(self, constants.WEB_CLIENT_CONTEXT_KEY, default=True)
            else None
        )
        self._grant_least_privilege()
        self._add_outputs()
        nag.add_suppressions(self)

    def _function_environment(self) -> dict[str, str]:
        return environment.function_environment(
            connections_table=self.tables.connections.table_name,
            presence_table=self.tables.presence.table_name,
            messages_table=self.tables.messages.table_name,
            user_pool_id=self.identity.user_pool.user_pool_id,
            user_pool_client_id=self.identity.client.user_pool_client_id,
            region=self.region,
            presence_grace_seconds=self.presence_grace_seconds,
            presence_queue_url=self.presence.queue.queue_url,
            url_suffix=self.url_suffix,
        )

    def _grant_least_privilege(self) -> None:
        """Table and user-pool actions from ``infra/permissions.py``; every route posts frames."""
        workers = self.functions.fanout_worker
        functions = {
            **self.functions.routes,
            "FanoutWorker": workers,
            "PresenceCheck": self.functions.presence_check,
        }
        for function_id, function in functions.items():
            permissions.grant(
                function,
                permissions.GRANTS[function_id],
                tables=self.tables.by_logical_id(),
                user_pool_arn=self.identity.user_pool.user_pool_arn,
            )
            self.websocket.grant_manage_connections(function)
            if function_id in permissions.INVOKES_FANOUT_WORKER:
                # The unqualified function only (grant_invoke would add every version: ARN:*).
                iam.Grant.add_to_principal(
                    grantee=function, actions=["lambda:InvokeFunction"], resource_arns=[workers.function_arn]
                )
            if function_id in permissions.SENDS_PRESENCE_CHECKS:
                iam.Grant.add_to_principal(
                    grantee=function,
                    actions=["sqs:SendMessage"],
                    resource_arns=[self.presence.queue.queue_arn],
                )

    def _add_outputs(self) -> None:
        outputs = {
            constants.OUTPUT_WEBSOCKET_URL: (self.websocket.url, "Connect here with ?token=<access token>"),
            constants.OUTPUT_REGION: (self.region, "Region of the API and the user pool"),
            constants.OUTPUT_USER_POOL_ID: (self.identity.user_pool.user_pool_id, "Cognito user pool"),
            constants.OUTPUT_USER_POOL_CLIENT_ID: (
                self.identity.client.user_pool_client_id,
                "Cognito app client (no secret) for sign-up and sign-in",
            ),
        }
        if self.web_client is not None:
            outputs[constants.OUTPUT_WEB_CLIENT_URL] = (
                self.web_client.url,
                "Open this in a browser: the web client, configured for this stack",
            )
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)


def context_flag(scope: Construct, key: str, *, default: bool) -> bool:
    """A true/false CDK context value; ``-c key=false`` arrives as a string, cdk.json as a bool."""
    value = scope.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in {"true", "false"}:
        raise ValueError(f"CDK context {key!r} must be true or false, got {value!r}")
    return text == "true"


def context_count(scope: Construct, key: str, *, default: int) -> int:
    """A positive whole-number CDK context value (``-c key=5000`` arrives as a string)."""
    value = scope.node.try_get_context(key)
    if value is None:
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"CDK context {key!r} must be a whole number, got {value!r}") from None
    if number < 1 or isinstance(value, bool):
        raise ValueError(f"CDK context {key!r} must be 1 or more, got {value!r}")
    return number


def context_seconds(scope: Construct, key: str, *, default: int) -> int:
    """A whole number of seconds from CDK context, 0 to SQS's longest message delay (900)."""
    value = scope.node.try_get_context(key)
    if value is None:
        return default
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ValueError(f"CDK context {key!r} must be a whole number of seconds, got {value!r}") from None
    if not 0 <= seconds <= MAX_PRESENCE_GRACE_SECONDS:
        raise ValueError(
            f"CDK context {key!r} must be 0 to {MAX_PRESENCE_GRACE_SECONDS} seconds, got {seconds}"
        )
    return seconds
