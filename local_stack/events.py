"""The events API Gateway hands to Lambda for a WebSocket API, built from plain data (no sockets).

Shapes follow what API Gateway sends (and what Powertools' parser models describe):

- the REQUEST authorizer gets ``type``, ``methodArn``, the handshake's headers and query string,
  ``stageVariables`` and the ``$connect`` request context;
- ``$connect`` gets the headers and query string; message routes get ``body`` and
  ``isBase64Encoded``; ``$disconnect`` gets the short header set API Gateway sends then, and the
  close code and reason;
- every event after a successful authorizer carries ``requestContext.authorizer``: the
  authorizer's ``context`` plus its ``principalId``.

Route selection (``$request.body.action``) is here too, because it is a rule about bodies, and
``EventLog``, the record of the events built and how each call went (the inspector's, and with
``--record-events`` the whole events for tests).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_stack import ids

CONNECT = "$connect"
DISCONNECT = "$disconnect"
DEFAULT = "$default"
# Month names by hand: strftime's %b follows the process locale, API Gateway's does not.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Api:
    """The WebSocket API and stage the events come from."""

    api_id: str
    stage: str
    region: str
    account_id: str

    def method_arn(self, route_key: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/{route_key}"


@dataclass(frozen=True)
class Handshake:
    """What API Gateway keeps from a connection's opening request."""

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    domain_name: str
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    query: Sequence[tuple[str, str]] = field(default_factory=tuple)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def request_time(epoch_ms: int) -> str:
    """API Gateway's ``requestTime``: ``19/Jan/2023:21:13:26 +0000``."""
    t = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} +0000"


def select_route(body: str, route_keys: Collection[str]) -> str:
    """The route for a message: its JSON ``action`` when that names a route, else ``$default``."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's parser goes
        return DEFAULT
    action = message.get("action") if isinstance(message, dict) else None
    # $connect and friends are not selectable from a body.
    if isinstance(action, str) and action in route_keys and not action.startswith("$"):
        return action
    return DEFAULT


def authorizer_event(api: Api, handshake: Handshake, *, at_ms: int) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": api.method_arn(CONNECT),
        **_handshake_headers(handshake),
        **_query_parameters(handshake),
        "stageVariables": {},
        "requestContext": _request_context(api, handshake, CONNECT, "CONNECT", at_ms=at_ms),
    }


def connect_event(
    api: Api, handshake: Handshake, authorizer: Mapping[str, Any] | None, *, at_ms: int
) -> dict[str, Any]:
    return {
        **_handshake_headers(handshake),
        **_query_parameters(handshake),
        "requestContext": _request_context(
            api, handshake, CONNECT, "CONNECT", at_ms=at_ms, authorizer=authorizer
        ),
        "isBase64Encoded": False,
    }


def message_event(
    api: Api,
    handshake: Handshake,
    authorizer: Mapping[str, Any] | None,
    *,
    route_key: str,
    body: str,
    at_ms: int,
) -> dict[str, Any]:
    context = _request_context(api, handshake, route_key, "MESSAGE", at_ms=at_ms, authorizer=authorizer)
    context["messageId"] = ids.request_id()
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: Api,
    handshake: Handshake,
    authorizer: Mapping[str, Any] | None,
    *,
    status_code: int,
    reason: str,
    at_ms: int,
) -> dict[str, Any]:
    context = _request_context(api, handshake, DISCONNECT, "DISCONNECT", at_ms=at_ms, authorizer=authorizer)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    # API Gateway sends these four, not the handshake's headers, with $disconnect.
    headers = {"Host": handshake.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def authorizer_context(principal_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """``requestContext.authorizer`` of every later event: the context plus the principal."""
    return {**context, "principalId": principal_id}


def _request_context(
    api: Api,
    handshake: Handshake,
    route_key: str,
    event_type: str,
    *,
    at_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": ids.request_id(),
        "requestTime": request_time(at_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": handshake.connected_at_ms,
        "requestTimeEpoch": at_ms,
        "identity": {"sourceIp": handshake.source_ip, "userAgent": handshake.user_agent},
        "requestId": ids.request_id(),
        "domainName": handshake.domain_name,
        "connectionId": handshake.connection_id,
        "apiId": api.api_id,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def _handshake_headers(handshake: Handshake) -> dict[str, Any]:
    # API Gateway adds the forwarding headers of its load balancer to what the client sent.
    pairs = [
        *handshake.headers,
        ("X-Amzn-Trace-Id", ids.trace_id()),
        ("X-Forwarded-For", handshake.source_ip),
        ("X-Forwarded-Port", handshake.domain_name.rpartition(":")[2] or "443"),
        ("X-Forwarded-Proto", "http"),
    ]
    single, multi = _single_and_multi(pairs)
    return {"headers": single, "multiValueHeaders": multi}


def _query_parameters(handshake: Handshake) -> dict[str, Any]:
    if not handshake.query:
        return {}
    single, multi = _single_and_multi(handshake.query)
    return {"queryStringParameters": single, "multiValueQueryStringParameters": multi}


def _single_and_multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two views of repeated names: the last value, and all values in order."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


# -- the record of events, for tests (whole events) and the inspector (what each call did)

AUTHORIZER = "authorizer"
# Summaries the inspector shows; whole events kept with --record-events (for tests of their shape).
RECENT_EVENTS = 500
RECORDED_EVENTS = 5000


@dataclass
class LoggedEvent:
    """One event handed to a function, and how the call went once it is over."""

    kind: str  # the route key, or "authorizer"
    connection_id: str
    user: str
    at_ms: int
    event: dict[str, Any] | None = None  # the whole event, when the log keeps them
    status: int | None = None  # None while the call runs
    duration_ms: float | None = None
    error: str = ""

    def finish(self, status: int, duration_ms: float, error: str = "") -> None:
        self.status, self.duration_ms, self.error = status, duration_ms, error

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "connectionId": self.connection_id,
            "user": self.user,
            "at": datetime.fromtimestamp(self.at_ms / 1000, UTC).isoformat(timespec="milliseconds"),
            "status": self.status,
            "durationMs": None if self.duration_ms is None else round(self.duration_ms, 1),
            "error": self.error,
        }


class EventLog:
    """The latest events built, newest last: summaries always, whole events when ``keep_events``."""

    def __init__(self, *, keep_events: bool = False) -> None:
        self.keep_events = keep_events
        self._entries: deque[LoggedEvent] = deque(maxlen=RECORDED_EVENTS if keep_events else RECENT_EVENTS)

    def record(self, kind: str, event: dict[str, Any]) -> LoggedEvent:
        context = event.get("requestContext") or {}
        authorizer = context.get("authorizer") or {}
        entry = LoggedEvent(
            kind=kind,
            connection_id=str(context.get("connectionId", "")),
            user=str(authorizer.get("username") or authorizer.get("principalId") or "-"),
            at_ms=now_ms(),
            event=event if self.keep_events else None,
        )
        self._entries.append(entry)
        return entry

    def recorded(self) -> list[dict[str, Any]]:
        """Every whole event kept, oldest first, as ``{"kind", "event"}``."""
        return [{"kind": e.kind, "event": e.event} for e in self._entries if e.event is not None]

    def recent(self, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
        """Summaries of the latest ``limit`` events, newest first."""
        latest = list(self._entries)[-limit:] if limit > 0 else []
        return [entry.summary() for entry in reversed(latest)]
