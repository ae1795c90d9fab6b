"""The WebSocket API: routes, integrations, the $connect authorizer, the stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra import constants
from infra.stack import ChatStack
from infra.websocket_api import stage_throttle
from tests.infra.conftest import logical_id, of_type, synthesize


def _routes(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    }


def test_route_selection_expression(template: Template) -> None:
    """The API picks the route from the frame's `action` field, as the protocol says."""
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"},
    )


def test_every_route_is_wired_to_its_own_function(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Each protocol route exists once and reaches the Lambda function with that route's handler."""
    routes = _routes(resources)
    assert sorted(routes) == sorted(route.key for route in constants.ROUTES)
    for route in constants.ROUTES:
        target = routes[route.key]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = resources[target]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        function_arn = json.dumps(integration["IntegrationUri"])
        function_id = logical_id(chat_stack.functions.routes[route.function_id])
        assert f'"{function_id}"' in function_arn, route.key
        assert resources[function_id]["Properties"]["Handler"] == route.handler


def test_authorizer_guards_connect_only(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Only $connect has the Lambda authorizer; every other route is reachable only via a connection."""
    authorizer_id, authorizer = next(iter(of_type(resources, "AWS::ApiGatewayV2::Authorizer").items()))
    for key, route in _routes(resources).items():
        if key == "$connect":
            assert route["AuthorizationType"] == "CUSTOM"
            assert route["AuthorizerId"] == {"Ref": authorizer_id}
        else:
            assert route.get("AuthorizationType", "NONE") == "NONE", key
            assert "AuthorizerId" not in route, key
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert logical_id(chat_stack.functions.authorizer) in json.dumps(
        authorizer["Properties"]["AuthorizerUri"]
    )


def test_authorizer_reads_token_from_query_string(template: Template) -> None:
    """Browsers cannot set headers on a WebSocket: the token rides in `?token=`."""
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer", {"IdentitySource": ["route.request.querystring.token"]}
    )


def test_stage_is_throttled_for_the_default_audience_and_auto_deployed(template: Template) -> None:
    """The prod stage deploys on change; sized for 5,000 users: 1,000 requests/s, bursts of 2,000."""
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": constants.STAGE_NAME,
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingRateLimit": 1000, "ThrottlingBurstLimit": 2000},
        },
    )


@pytest.mark.parametrize(
    ("expected_users", "rate", "burst"),
    [(1, 100, 200), (200, 100, 200), (3000, 600, 1200), (20_000, 4000, 5000), (10**6, 10_000, 5000)],
)
def test_stage_throttle_formula(expected_users: int, rate: int, burst: int) -> None:
    """rate = 0.2 x users (at least 100), burst = 2 x rate, within the account's 10,000 / 5,000."""
    throttle = stage_throttle(expected_users)
    assert (throttle.rate_limit, throttle.burst_limit) == (rate, burst)


def test_expected_users_context_sizes_the_stage() -> None:
    """-c expectedUsers=20000 reaches the template: 4,000 requests/s, bursts of 5,000."""
    template = Template.from_stack(synthesize(**{constants.EXPECTED_USERS_CONTEXT_KEY: "20000"}))
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {"DefaultRouteSettings": {"ThrottlingRateLimit": 4000, "ThrottlingBurstLimit": 5000}},
    )


def test_expected_users_must_be_a_positive_number() -> None:
    """A malformed expectedUsers fails the synth with a message naming the key."""
    for value in ("0", "many"):
        with pytest.raises(ValueError, match="expectedUsers"):
            synthesize(**{constants.EXPECTED_USERS_CONTEXT_KEY: value})


def test_stage_writes_json_access_logs(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Access logs go to a log group with retention, one JSON object with the connection's story."""
    stage = next(iter(of_type(resources, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    log_group_id = logical_id(chat_stack.websocket.access_logs)
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    for field in ("requestId", "connectionId", "routeKey", "eventType", "status", "user"):
        assert fields[field].startswith("$context."), field
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_account_logging_role_is_set_before_the_stage(resources: dict[str, Any], template: Template) -> None:
    """API Gateway needs an account-level logs role for WebSocket logging; the stage waits for it."""
    account_id = next(iter(of_type(resources, "AWS::ApiGateway::Account")))
    stage = next(iter(of_type(resources, "AWS::ApiGatewayV2::Stage").values()))
    assert account_id in stage.get("DependsOn", [])
    template.has_resource("AWS::ApiGateway::Account", {"DeletionPolicy": "Retain"})
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "apigateway.amazonaws.com"}})]}
            )
        },
    )
