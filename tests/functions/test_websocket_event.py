"""The typed accessor of API Gateway WebSocket events, checked against the recorded test events."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from chat.websocket_event import WebSocketEvent

EVENTS = Path(__file__).parent.parent / "events"


def recorded(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.mark.parametrize("name", ["connect", "message", "disconnect"])
def test_fields_match_the_recorded_events(name: str) -> None:
    """Every field the routes read is the recorded event's own value."""
    raw = recorded(name)
    event = WebSocketEvent(raw)
    context = raw["requestContext"]
    assert event.request_context.connection_id == context["connectionId"]
    assert event.request_context.route_key == context["routeKey"]
    assert event.request_context.api_id == context["apiId"]
    assert event.request_context.stage == context["stage"]
    assert event.request_context.message_id == context.get("messageId")
    assert event.body == raw.get("body")
    assert event.decoded_body == raw.get("body")


def test_message_event_carries_a_frame_id_and_a_body() -> None:
    """A message route's event has API Gateway's message id and the frame's text."""
    event = WebSocketEvent(recorded("message"))
    assert event.request_context.message_id
    assert isinstance(event.body, str) and event.body


def test_authorizer_context_is_read_and_absent_is_empty() -> None:
    """The authorizer's context as API Gateway passes it on; none (or not an object) reads as empty."""
    raw = recorded("message")
    raw["requestContext"]["authorizer"] = {"principalId": "alice", "username": "alice"}
    assert WebSocketEvent(raw).request_context.authorizer["username"] == "alice"
    raw["requestContext"]["authorizer"] = "alice"
    assert WebSocketEvent(raw).request_context.authorizer == {}
    del raw["requestContext"]["authorizer"]
    assert WebSocketEvent(raw).request_context.authorizer == {}


def test_binary_frame_is_decoded() -> None:
    """A body API Gateway marks as base64 is decoded; the raw body stays as sent."""
    raw = recorded("message") | {"body": base64.b64encode(b"ping").decode(), "isBase64Encoded": True}
    event = WebSocketEvent(raw)
    assert event.decoded_body == "ping"
    assert event.body == raw["body"]


def test_a_missing_required_field_raises_key_error() -> None:
    """An event without a connection id is not API Gateway's: reading it fails loudly."""
    raw = recorded("message")
    del raw["requestContext"]["connectionId"]
    with pytest.raises(KeyError):
        _ = WebSocketEvent(raw).request_context.connection_id
