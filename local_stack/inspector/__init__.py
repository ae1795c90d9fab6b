"""The inspector: ``/_local/`` on the stack's HTTP port, a page to look inside the running stack.

It shows the open connections (user, id, age, idle time) with two actions each: *drop*, which does
what API Gateway's ``DELETE @connections/{id}`` does (close the socket, then ``$disconnect``), and
*stale*, which cuts the socket without ``$disconnect`` so that the connection's record stays and
the next post to it answers 410 (to watch the handlers prune it). Also: the latest events with
route, status and duration (the gateway's ``EventLog``), the management-API calls, and every table,
scanned page by page.

The page (``index.html``, ``inspector.js``, ``inspector.css`` in this folder) needs no build step;
it reads a small JSON API beside it:

    GET  /_local/api/connections                      {"connections": [...]}
    POST /_local/api/connections/{id}/drop            204, or 410 when it is not open
    POST /_local/api/connections/{id}/stale           204, or 410
    GET  /_local/api/events?limit=N                   {"events": [...]}, newest first
    GET  /_local/api/management                       {"calls": [...]}, newest first
    GET  /_local/api/tables                           {"tables": [{"logicalId", "name"}]}
    GET  /_local/api/tables/{logicalId}?start=T&limit=N  {"items": [...], "next": T or null}

Like the rest of the stack it listens on 127.0.0.1 only; besides, it answers only requests whose
``Host`` is a loopback name (no DNS rebinding), and takes an action only from its own page (the
``Origin`` of a POST must be the stack's own), so a web page open in the same browser cannot
drop connections.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from boto3.dynamodb.types import Binary, TypeDeserializer
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from local_stack.events import EventLog
from local_stack.gateway import GoneConnection, WebSocketGateway
from local_stack.management import ManagementApi

PREFIX = "/_local/"
PAGE_ROOT = Path(__file__).resolve().parent
PAGE_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "inspector.js": ("inspector.js", "text/javascript; charset=utf-8"),
    "inspector.css": ("inspector.css", "text/css; charset=utf-8"),
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200

Json = dict[str, Any]


class Inspector:
    """Answers the requests under ``/_local/`` on the WebSocket port."""

    def __init__(
        self,
        *,
        gateway: WebSocketGateway,
        management: ManagementApi,
        event_log: EventLog,
        table_names: Mapping[str, str],
        dynamodb: Callable[[], Any],
    ) -> None:
        self._gateway = gateway
        self._management = management
        self._event_log = event_log
        self._tables = dict(table_names)
        self._dynamodb = dynamodb
        self._client: Any = None

    async def respond(self, request: Request) -> Response:
        if not _loopback(request.headers.get("Host", "")):
            return _json(403, {"message": "the inspector answers on 127.0.0.1 only"})
        url = urlsplit(request.path)
        route = url.path.removeprefix(PREFIX.rstrip("/")).lstrip("/")
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        if not route.startswith("api/"):
            return self._page(request.method, route)
        parts = [unquote(part) for part in route.removeprefix("api/").split("/")]
        if request.method == "POST":
            if not _same_origin(request.headers):
                return _json(403, {"message": "actions are taken from the inspector's own page only"})
            return self._act(parts)
        if request.method != "GET":
            return _json(405, {"message": "GET or POST"})
        return await self._read(parts, query)

    # -- the page

    def _page(self, method: str, name: str) -> Response:
        if method != "GET":
            return _json(405, {"message": "GET"})
        if name not in PAGE_FILES:
            return _response(404, b"Not Found\n", "text/plain; charset=utf-8")
        file, content_type = PAGE_FILES[name]
        return _response(200, (PAGE_ROOT / file).read_bytes(), content_type)

    # -- the API

    async def _read(self, parts: list[str], query: dict[str, str]) -> Response:
        match parts:
            case ["connections"]:
                return _json(200, {"connections": self._gateway.open_connections()})
            case ["events"]:
                return _json(200, {"events": self._event_log.recent(_int(query.get("limit"), 300))})
            case ["management"]:
                return _json(200, {"calls": self._management.calls()})
            case ["tables"]:
                tables = [{"logicalId": key, "name": name} for key, name in self._tables.items()]
                return _json(200, {"tables": tables})
            case ["tables", logical_id] if logical_id in self._tables:
                limit = min(_int(query.get("limit"), PAGE_SIZE), MAX_PAGE_SIZE)
                table = self._tables[logical_id]
                return _json(200, await asyncio.to_thread(self._scan, table, query.get("start"), limit))
        return _json(404, {"message": "no such inspector resource"})

    def _act(self, parts: list[str]) -> Response:
        match parts:
            case ["connections", connection_id, "drop"]:
                action = self._gateway.delete
            case ["connections", connection_id, "stale"]:
                action = self._gateway.make_stale
            case _:
                return _json(404, {"message": "no such inspector action"})
        try:
            action(connection_id)
        except GoneConnection:
            return _json(410, {"message": f"{connection_id} is not open"})
        return _response(204, b"", "text/plain; charset=utf-8")

    def _scan(self, table: str, start: str | None, limit: int) -> Json:
        """One page of a table's items, as plain JSON, and the token of the next page."""
        if self._client is None:
            self._client = self._dynamodb()
        request: Json = {"TableName": table, "Limit": limit}
        if start:
            request["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(start.encode()))
        answer = self._client.scan(**request)
        deserializer = TypeDeserializer()
        items = [
            {name: _plain(deserializer.deserialize(value)) for name, value in sorted(item.items())}
            for item in answer.get("Items", [])
        ]
        last_key = answer.get("LastEvaluatedKey")
        next_token = base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode() if last_key else None
        return {"table": table, "items": items, "next": next_token}


def _plain(value: Any) -> Any:
    """A DynamoDB value as JSON: numbers as numbers, sets as sorted lists, binary as base64."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(_plain(member) for member in value)
    if isinstance(value, list):
        return [_plain(member) for member in value]
    if isinstance(value, dict):
        return {key: _plain(member) for key, member in value.items()}
    if isinstance(value, Binary):
        return base64.b64encode(bytes(value)).decode()
    return value


def _loopback(host_header: str) -> bool:
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    return host in LOOPBACK_HOSTS


def _same_origin(headers: Headers) -> bool:
    origin = headers.get("Origin")
    return origin is not None and origin == f"http://{headers.get('Host', '')}"


def _int(raw: str | None, default: int) -> int:
    try:
        return max(1, int(raw)) if raw is not None else default
    except ValueError:
        return default


def _json(status: int, body: Json) -> Response:
    return _response(status, json.dumps(body).encode(), "application/json")


def _response(status: int, body: bytes, content_type: str) -> Response:
    reasons = {200: "OK", 204: "No Content", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
    headers = Headers(
        {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    return Response(status, reasons.get(status, "Gone" if status == 410 else "Error"), headers, body)
