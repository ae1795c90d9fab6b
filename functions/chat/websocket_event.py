"""The fields of an API Gateway WebSocket event that the route handlers read, typed.

Our own accessor rather than Powertools' ``APIGatewayWebSocketEvent``: importing any of Powertools'
event classes runs ``aws_lambda_powertools.utilities.data_classes``, which imports every one of
them, about a fifth of a route handler's cold start, for the few fields read here. The names and
the behaviour are Powertools' (a missing required field raises ``KeyError`` when read, optional ones
are ``None``), so the handlers read as they did. The shape is API Gateway's: see the events in
``tests/events/``.
"""

from __future__ import annotations

import base64
from typing import Any


class RequestContext:
    """``requestContext``: who is connected, through which API, stage and route."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    @property
    def connection_id(self) -> str:
        return str(self._raw["connectionId"])

    @property
    def route_key(self) -> str:
        return str(self._raw["routeKey"])

    @property
    def api_id(self) -> str:
        return str(self._raw["apiId"])

    @property
    def stage(self) -> str:
        return str(self._raw["stage"])

    @property
    def message_id(self) -> str | None:
        """API Gateway's id of the frame (message routes only)."""
        value = self._raw.get("messageId")
        return None if value is None else str(value)

    @property
    def authorizer(self) -> dict[str, Any]:
        """What the $connect authorizer returned as context; empty when there is none."""
        value = self._raw.get("authorizer")
        return value if isinstance(value, dict) else {}


class WebSocketEvent:
    """One invocation's event from an API Gateway WebSocket API."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: dict[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def body(self) -> str | None:
        """The frame as the client sent it (message routes); None on $connect and $disconnect."""
        value = self.raw_event.get("body")
        return None if value is None else str(value)

    @property
    def decoded_body(self) -> str | None:
        """The body, decoded from base64 when API Gateway says it is (a binary frame)."""
        body = self.body
        if body and self.raw_event.get("isBase64Encoded"):
            return base64.b64decode(body.encode()).decode()
        return body

    @property
    def request_context(self) -> RequestContext:
        return RequestContext(self.raw_event["requestContext"])
