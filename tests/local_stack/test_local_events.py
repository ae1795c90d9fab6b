"""The event builders and answer rules on their own: shapes, route selection, policies."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from local_stack import answers, events

API = events.Api("abcdef1234", "local", "us-east-1", "123456789012")
HANDSHAKE = events.Handshake(
    connection_id="L0SM9cOFvHcCIhw=",
    connected_at_ms=1_700_000_000_000,
    source_ip="127.0.0.1",
    user_agent="tests",
    domain_name="127.0.0.1:8080",
    headers=(("Host", "127.0.0.1:8080"), ("X-Multi", "a"), ("X-Multi", "b")),
    query=(("token", "t"),),
)
AUTHORIZER = {"username": "alice", "principalId": "alice"}
ROUTES = ("$connect", "$disconnect", "$default", "sendmessage", "sync", "who", "ping")


def test_built_events_validate_against_powertools_models() -> None:
    """Each builder's event parses with the matching Powertools model."""
    at = HANDSHAKE.connected_at_ms + 5
    APIGatewayWebSocketConnectEventModel.model_validate(
        events.connect_event(API, HANDSHAKE, AUTHORIZER, at_ms=at)
    )
    APIGatewayWebSocketMessageEventModel.model_validate(
        events.message_event(API, HANDSHAKE, AUTHORIZER, route_key="who", body="{}", at_ms=at)
    )
    APIGatewayWebSocketDisconnectEventModel.model_validate(
        events.disconnect_event(API, HANDSHAKE, AUTHORIZER, status_code=1001, reason="Going away", at_ms=at)
    )


def test_repeated_headers_keep_last_and_all_values() -> None:
    """``headers`` has the last value of a repeated name, ``multiValueHeaders`` all of them."""
    event = events.connect_event(API, HANDSHAKE, AUTHORIZER, at_ms=HANDSHAKE.connected_at_ms)
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"token": "t"}


def test_request_time_is_api_gateways_format() -> None:
    """``requestTime`` reads like ``14/Nov/2023:22:13:20 +0000``, whatever the locale."""
    assert events.request_time(1_700_000_000_000) == "14/Nov/2023:22:13:20 +0000"


@pytest.mark.parametrize(
    ("body", "route"),
    [
        ('{"action":"who"}', "who"),
        ('{"action":"$disconnect"}', "$default"),
        ('{"action":"WHO"}', "$default"),
        ('{"action":["who"]}', "$default"),
        ("[" * 5000 + "]" * 5000, "$default"),
        ("", "$default"),
    ],
)
def test_select_route(body: str, route: str) -> None:
    """Only an exact, selectable route key in ``action`` picks a route."""
    assert events.select_route(body, ROUTES) == route


ARN = API.method_arn("$connect")


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ARN}, True),
        ({"Effect": "Allow", "Action": "execute-api:*", "Resource": "arn:aws:execute-api:*"}, True),
        (
            {
                "Effect": "Allow",
                "Action": ["execute-api:Invoke"],
                "Resource": [ARN.replace("$connect", "?connect")],
            },
            True,
        ),
        ({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ARN + "x"}, False),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": ARN}, False),
        ({"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ARN}, False),
    ],
)
def test_policy_evaluation(statement: dict[str, object], allowed: bool) -> None:
    """IAM wildcards match; an Allow must name the action and resource."""
    assert answers.policy_allows({"Version": "2012-10-17", "Statement": [statement]}, ARN) is allowed


def test_explicit_deny_wins() -> None:
    """Deny beats Allow for the same resource."""
    statements = [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ARN},
    ]
    assert answers.policy_allows({"Statement": statements}, ARN) is False


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        ({"statusCode": 200}, None, 200),
        ({"statusCode": 204}, None, 204),
        ({"statusCode": 401}, None, 401),
        ({"statusCode": "200"}, None, 500),
        ({"statusCode": True}, None, 500),
        (None, None, 500),
        ({"statusCode": 200}, RuntimeError("x"), 500),
    ],
)
def test_connect_status(answer: object, error: BaseException | None, status: int) -> None:
    """$connect's status decides the handshake; anything malformed is a 500."""
    assert answers.connect_status(answer, error) == status
