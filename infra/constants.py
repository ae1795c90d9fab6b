"""Names shared by the stack, the local stack and the tests: one place to change them."""

from __future__ import annotations

from dataclasses import dataclass

STACK_NAME = "ServerlessChat"
STAGE_NAME = "prod"
LOCAL_STAGE_NAME = "local"
ROUTE_SELECTION_EXPRESSION = "$request.body.action"
TOKEN_QUERY_PARAMETER = "token"  # noqa: S105 - the query parameter's name, not a secret
PYTHON_RUNTIME = "python3.13"
# Where the function code lives; the asset is this folder plus its pinned requirements.
FUNCTIONS_DIR = "functions"


@dataclass(frozen=True)
class Route:
    """One API Gateway route and the Lambda handler behind it."""

    key: str
    function_id: str
    handler: str


ROUTES = (
    Route("$connect", "Connect", "chat.handlers.connect.handler"),
    Route("$disconnect", "Disconnect", "chat.handlers.disconnect.handler"),
    Route("sendmessage", "SendMessage", "chat.handlers.sendmessage.handler"),
    Route("sync", "Sync", "chat.handlers.sync.handler"),
    Route("who", "Who", "chat.handlers.who.handler"),
    Route("ping", "Ping", "chat.handlers.ping.handler"),
    Route("history", "History", "chat.handlers.history.handler"),
    Route("typing", "Typing", "chat.handlers.typing.handler"),
    Route("read", "Read", "chat.handlers.read.handler"),
    Route("inbox", "Inbox", "chat.handlers.inbox.handler"),
    Route("$default", "Default", "chat.handlers.default.handler"),
)
ROUTE_BY_KEY = {route.key: route for route in ROUTES}

AUTHORIZER_HANDLER = "chat.handlers.authorizer.handler"
PRESIGNUP_HANDLER = "chat.handlers.presignup.handler"
FANOUT_WORKER_HANDLER = "chat.handlers.fanout.handler"
PRESENCE_CHECK_HANDLER = "chat.handlers.presence.handler"

# Stack outputs: a client needs these to sign in and connect (same keys as the local /config.json).
OUTPUT_WEBSOCKET_URL = "WebSocketUrl"
OUTPUT_REGION = "Region"
OUTPUT_USER_POOL_ID = "UserPoolId"
OUTPUT_USER_POOL_CLIENT_ID = "UserPoolClientId"
OUTPUT_WEB_CLIENT_URL = "WebClientUrl"

# CDK context keys (`-c key=value` or cdk.json). The Cognito one lives in infra/user_pool_rules.py.
# retainData: keep the messages table and the user pool when the stack is deleted (default true).
RETAIN_DATA_CONTEXT_KEY = "retainData"
# nag: run cdk-nag's AwsSolutions checks on every synth (default true in cdk.json).
NAG_CONTEXT_KEY = "nag"
# apiGatewayLogsRole: set the account-wide role API Gateway needs to write WebSocket logs.
API_GATEWAY_LOGS_ROLE_CONTEXT_KEY = "apiGatewayLogsRole"
# expectedUsers: the audience the stage's throttle is sized for (infra/websocket_api.py, default 5000).
EXPECTED_USERS_CONTEXT_KEY = "expectedUsers"
# presenceGraceSeconds: how long a user's last connection must stay closed before they are
# announced offline (0 to 900; default chat.config.DEFAULT_PRESENCE_GRACE_SECONDS). A reconnect
# within it costs no presence frame.
PRESENCE_GRACE_CONTEXT_KEY = "presenceGraceSeconds"
# webClient: host the web client (S3 + CloudFront) with this stack's config.json (default true).
WEB_CLIENT_CONTEXT_KEY = "webClient"
