"""What AWS documents as valid for the values the stack hands API Gateway, kept as data.

CloudFormation's schema types these values only as strings, so a wrong one is found when API
Gateway refuses it at deploy time (and the stack rolls back). ``tests/infra/test_cdk_documented_values.py``
checks every such value in the synthesized template against the lists here; each list names the
AWS page it comes from, so a reader can compare it with the source.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent

# "Create routes for WebSocket APIs in API Gateway":
# https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html
# "There are three predefined routes that can be used: $connect, $disconnect, and $default. In
# addition, you can create custom routes." A custom route key is matched exactly against the value
# the route selection expression evaluates to; "$" marks variables and reserved keys in selection
# expressions ("WebSocket selection expressions", apigateway-websocket-api-selection-expressions.html),
# so a custom key here never starts with it.
ROUTES_PAGE = "https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html"
PREDEFINED_ROUTE_KEYS = frozenset({"$connect", "$disconnect", "$default"})
CUSTOM_ROUTE_KEY = re.compile(r"^[^$\s][^\s]*$")

# Same page, "Route selection expressions": "For WebSocket-based APIs, the expression should be of
# the form $request.body.{path_to_body_element}" (wrapped in ${...} is the same variable).
ROUTE_SELECTION_EXPRESSION = re.compile(
    r"^(\$request\.body\.[A-Za-z0-9_.]+|\$\{request\.body\.[A-Za-z0-9_.]+\})$"
)

# The API Gateway V2 API reference, Authorizer.identitySource (also botocore's apigatewayv2 model):
# https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-authorizers.html
# "The identity source can be headers, query string parameters, stage variables, and context
# parameters. For example, ... this value is route.request.header.Auth,
# route.request.querystring.Name for WebSocket APIs." The name patterns are CDK's
# (WebSocketLambdaAuthorizerProps.identitySource): header|querystring, stageVariables, context.
AUTHORIZERS_PAGE = "https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-authorizers.html"
IDENTITY_SOURCE_FORMS = (
    re.compile(r"^route\.request\.header\.[A-Za-z0-9._-]+$"),
    re.compile(r"^route\.request\.querystring\.[A-Za-z0-9._-]+$"),
    re.compile(r"^stageVariables\.[A-Za-z0-9._-]+$"),
    re.compile(r"^context\.[A-Za-z0-9._-]+$"),
)

ACCESS_LOG_VARIABLES_FILE = _HERE / "websocket_access_log_variables.txt"
ACCESS_LOG_PAGE = "https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html"
# A $context variable as it appears in a log format.
CONTEXT_VARIABLE = re.compile(r"\$context(?:\.[A-Za-z0-9_]+)+")


@cache
def access_log_variables() -> tuple[str, ...]:
    """The documented WebSocket access-log variables, as listed in the data file."""
    lines = ACCESS_LOG_VARIABLES_FILE.read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_access_log_variable(variable: str) -> bool:
    """Whether ``$context.x.y`` is one of the documented variables ({property}: any one key)."""
    for documented in access_log_variables():
        pattern = re.escape(documented).replace(re.escape("{property}"), r"[A-Za-z0-9_]+")
        if re.fullmatch(pattern, variable):
            return True
    return False


def is_route_key(key: str) -> bool:
    return key in PREDEFINED_ROUTE_KEYS or bool(CUSTOM_ROUTE_KEY.match(key))


def is_identity_source(source: str) -> bool:
    return any(form.match(source) for form in IDENTITY_SOURCE_FORMS)
