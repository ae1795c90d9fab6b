"""Every value the stack hands API Gateway that CloudFormation types only as a string is one AWS
documents: access-log variables, route keys, the route selection expression, identity sources.

The lists are data in ``infra/aws_reference/``, each with the AWS page it comes from.
"""

from __future__ import annotations

import json
from typing import Any

from infra import aws_reference, constants
from tests.infra.conftest import of_type


def _only(resources: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (found,) = of_type(resources, resource_type).values()
    return found["Properties"]


def test_the_variable_list_is_the_documented_one() -> None:
    """The data file holds the WebSocket logging page's list, names its source, and is well formed."""
    variables = aws_reference.access_log_variables()
    assert len(variables) == len(set(variables)) == 49
    assert all(v.startswith("$context.") for v in variables)
    assert aws_reference.ACCESS_LOG_PAGE in aws_reference.ACCESS_LOG_VARIABLES_FILE.read_text()
    for variable in ("$context.connectionId", "$context.integration.error", "$context.authorizer.username"):
        assert aws_reference.is_access_log_variable(variable), variable


def test_the_check_refuses_what_websocket_logging_does_not_support() -> None:
    """Variables of REST and HTTP APIs that the WebSocket page does not list fail the check."""
    for variable in (
        "$context.integrationErrorMessage",  # the former value: a REST/HTTP API variable
        "$context.httpMethod",
        "$context.responseLatency",
        "$context.authorizer.claims.sub",  # JWT claims: HTTP APIs only, and {property} is one key
    ):
        assert not aws_reference.is_access_log_variable(variable), variable


def test_every_access_log_variable_is_documented(resources: dict[str, Any]) -> None:
    """Each $context variable in the stage's access-log format is on the WebSocket logging page."""
    stage = _only(resources, "AWS::ApiGatewayV2::Stage")
    log_format = stage["AccessLogSettings"]["Format"]
    assert isinstance(log_format, str)
    json.loads(log_format)  # one JSON object a line
    used = aws_reference.CONTEXT_VARIABLE.findall(log_format)
    assert len(used) >= 10
    assert [v for v in used if not aws_reference.is_access_log_variable(v)] == []


def test_route_keys_are_predefined_or_custom(resources: dict[str, Any]) -> None:
    """Route keys: $connect, $disconnect, $default, and custom keys that do not start with $."""
    keys = [
        route["Properties"]["RouteKey"] for route in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    ]
    assert sorted(keys) == sorted(route.key for route in constants.ROUTES)
    assert [key for key in keys if not aws_reference.is_route_key(key)] == []
    assert {key for key in keys if key.startswith("$")} <= aws_reference.PREDEFINED_ROUTE_KEYS
    assert not aws_reference.is_route_key("$sendmessage") and not aws_reference.is_route_key("")


def test_route_selection_expression_has_the_documented_form(resources: dict[str, Any]) -> None:
    """The API routes on $request.body.<path>, the one form WebSocket APIs take."""
    api = _only(resources, "AWS::ApiGatewayV2::Api")
    assert api["ProtocolType"] == "WEBSOCKET"
    assert aws_reference.ROUTE_SELECTION_EXPRESSION.match(api["RouteSelectionExpression"])
    assert not aws_reference.ROUTE_SELECTION_EXPRESSION.match(
        "${request.method} ${request.path}"
    )  # HTTP APIs'


def test_identity_sources_have_the_documented_forms(resources: dict[str, Any]) -> None:
    """The REQUEST authorizer reads route.request.querystring.token; every source has a documented form."""
    authorizer = _only(resources, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["AuthorizerType"] == "REQUEST"
    sources = authorizer["IdentitySource"]
    assert sources == [f"route.request.querystring.{constants.TOKEN_QUERY_PARAMETER}"]
    assert [s for s in sources if not aws_reference.is_identity_source(s)] == []
    # HTTP API and REST API spellings are not WebSocket ones.
    for wrong in ("$request.querystring.token", "method.request.querystring.token", "querystring.token"):
        assert not aws_reference.is_identity_source(wrong), wrong
