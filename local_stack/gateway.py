"""API Gateway's WebSocket side, on the ``websockets`` library: sockets in, Lambda events out.

One ``WebSocketGateway`` serves ``ws://HOST:PORT/<stage>`` and, on the same port, plain HTTP GETs
(handed to an ``HttpSite``). For each client it does what API Gateway does:

1. Handshake: no ``token`` query parameter (the authorizer's identity source) is a 401 without
   calling the authorizer; otherwise the authorizer decides (401/403/500, see ``answers.py``), then
   ``$connect`` (a non-2xx status refuses the handshake with that status). Only then does the
   socket open and the connection id exist for the management API.
2. Messages: text frames are routed on ``$request.body.action`` (``$default`` otherwise) and each
   one is handled concurrently, as API Gateway invokes integrations (each connection's invocations
   queue apart from every other's: ``instances.py``); a binary frame closes the
   socket with 1003, as API Gateway does not take them. A frame over 32 KB or a message over
   128 KB closes it with 1009 (websockets enforces both, given the two sizes).
3. Timeouts: 10 minutes without a data frame in either direction, or 2 hours in all, close the
   socket with 1001 "Going away".
4. ``$disconnect`` once the socket is closed, with the close code and reason.

The management API (``management.py``) reaches connections through ``post``, ``describe`` and
``delete``; a connection that is closed or unknown raises ``GoneConnection``. Frames received
before a ``delete`` still run: API Gateway invokes the integration for each message it receives,
and its documentation describes no cancelling of those invocations when a connection is deleted;
what they post then gets a 410. The inspector lists
them (``open_connections``) and can make one go stale (``make_stale``): its socket is cut without a
``$disconnect``, as when API Gateway loses a client and never tells the integration, so its record
stays behind for a 410 to prune.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from infra import constants
from local_stack import answers, events, ids
from local_stack.console import Console
from local_stack.lambdas import Function, Invocation, LambdaRuntime

# API Gateway stops waiting for an integration after 29 s.
INTEGRATION_TIMEOUT_S = 29.0
GOING_AWAY = "Going away"


@dataclass(frozen=True)
class Limits:
    """API Gateway's limits for WebSocket APIs; tests shorten the timeouts."""

    frame_bytes: int = 32 * 1024
    message_bytes: int = 128 * 1024
    idle_timeout_s: float = 10 * 60
    max_lifetime_s: float = 2 * 60 * 60


class GoneConnection(Exception):
    """No open connection has this id (never opened, or already closed): the API's 410."""


class HttpSite(Protocol):
    """Answers the plain HTTP requests that arrive on the WebSocket port."""

    async def handle(self, request: Request) -> Response: ...


@dataclass
class ClientSocket:
    """One open socket, as API Gateway tracks it."""

    handshake: events.Handshake
    authorizer: Mapping[str, Any] | None
    websocket: ServerConnection
    limits: Limits
    opened: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    last_active_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Cut by the inspector: the socket is gone, and no $disconnect is to run for it.
    stale: bool = False

    @property
    def id(self) -> str:
        return self.handshake.connection_id

    @property
    def user(self) -> str:
        authorizer = self.authorizer or {}
        return str(authorizer.get("username") or authorizer.get("principalId") or "-")

    def touch(self) -> None:
        self.last_active = time.monotonic()
        self.last_active_at = datetime.now(UTC)


@dataclass
class _Pending:
    """A handshake that passed the authorizer and $connect, waiting for its socket to open."""

    handshake: events.Handshake
    authorizer: Mapping[str, Any] | None


class WebSocketGateway:
    """The WebSocket endpoint of one API stage, calling the route functions."""

    def __init__(
        self,
        *,
        api: events.Api,
        runtime: LambdaRuntime,
        routes: Mapping[str, Function],
        authorizer: Function,
        site: HttpSite,
        console: Console,
        limits: Limits | None = None,
        event_log: events.EventLog | None = None,
    ) -> None:
        self.api = api
        self.limits = limits or Limits()
        self._runtime = runtime
        self._routes = routes
        self._authorizer = authorizer
        self._site = site
        self._console = console
        self.event_log = event_log or events.EventLog()
        self._connections: dict[str, ClientSocket] = {}
        self._pending: dict[ServerConnection, _Pending] = {}
        self._server: Server | None = None

    # -- lifecycle

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: a free port); the port."""
        self._server = await serve(
            self._serve_connection,
            host,
            port,
            process_request=self._process_request,
            # API Gateway negotiates no extensions, and does not ping clients.
            compression=None,
            ping_interval=None,
            # Authorizer and $connect run inside the handshake, so it may take their timeouts.
            open_timeout=INTEGRATION_TIMEOUT_S * 2,
            max_size=(self.limits.message_bytes, self.limits.frame_bytes),
            server_header=None,
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every socket with 1001 and wait until each ``$disconnect`` has run."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- the management API's view

    async def post(self, connection_id: str, data: bytes) -> None:
        """Send ``data`` to a client: a text frame when it is UTF-8, else a binary one."""
        connection = self._open_connection(connection_id)
        try:
            message: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        try:
            await connection.websocket.send(message)
        except ConnectionClosed:
            raise GoneConnection(connection_id) from None
        connection.touch()

    def describe(self, connection_id: str) -> dict[str, Any]:
        """GET @connections/{id}: when it connected, from where, when it last sent or received.

        The wire names are camelCase (SDKs show them as ``ConnectedAt``, ``Identity.SourceIp``...).
        """
        connection = self._open_connection(connection_id)
        handshake = connection.handshake
        return {
            "connectedAt": _iso(datetime.fromtimestamp(handshake.connected_at_ms / 1000, UTC)),
            "identity": {"sourceIp": handshake.source_ip, "userAgent": handshake.user_agent or ""},
            "lastActiveAt": _iso(connection.last_active_at),
        }

    def delete(self, connection_id: str) -> None:
        """DELETE @connections/{id}: close the socket; ``$disconnect`` follows as usual."""
        connection = self._open_connection(connection_id)
        self._spawn(connection, connection.websocket.close(CloseCode.NORMAL_CLOSURE, ""))

    def connection_ids(self) -> list[str]:
        return list(self._connections)

    def open_connections(self) -> list[dict[str, Any]]:
        """Every open connection, oldest first: id, user, when it opened, its age and idle time."""
        now = time.monotonic()
        return [
            {
                "connectionId": connection.id,
                "user": connection.user,
                "connectedAt": _iso(datetime.fromtimestamp(connection.handshake.connected_at_ms / 1000, UTC)),
                "ageSeconds": round(now - connection.opened, 1),
                "idleSeconds": round(now - connection.last_active, 1),
                "sourceIp": connection.handshake.source_ip,
                "userAgent": connection.handshake.user_agent or "",
            }
            for connection in sorted(self._connections.values(), key=lambda c: c.opened)
            if connection.websocket.state is State.OPEN
        ]

    def make_stale(self, connection_id: str) -> None:
        """Cut the socket without a close frame and without ``$disconnect``: a stale connection."""
        connection = self._open_connection(connection_id)
        connection.stale = True
        connection.websocket.transport.abort()
        self._console.note_call(connection.user, connection.id, "stale", "socket cut, no $disconnect")

    def connection_ids_of(self, user: str) -> list[str]:
        """The open connections of ``user``, oldest first."""
        return [c.id for c in self._connections.values() if c.user == user]

    def _open_connection(self, connection_id: str) -> ClientSocket:
        connection = self._connections.get(connection_id)
        if connection is None or connection.websocket.state is not State.OPEN:
            raise GoneConnection(connection_id)
        return connection

    # -- handshake

    async def _process_request(self, websocket: ServerConnection, request: Request) -> Response | None:
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return await self._site.handle(request)
        url = urlsplit(request.path)
        if url.path.rstrip("/") != f"/{self.api.stage}":
            # API Gateway answers a stage it does not have with 403.
            return _json_response(403, answers.handshake_body(403))
        handshake = self._handshake(websocket, request)
        if not any(name == constants.TOKEN_QUERY_PARAMETER and value for name, value in handshake.query):
            # The authorizer's identity source is missing: API Gateway refuses without calling it.
            self._console.refused(handshake.connection_id, 401, "no token in the query string")
            return _json_response(401, answers.handshake_body(401))
        verdict = await self._authorize(handshake)
        if verdict.status != 200:
            self._console.refused(handshake.connection_id, verdict.status, verdict.why)
            return _json_response(verdict.status, answers.handshake_body(verdict.status))
        authorizer = events.authorizer_context(verdict.principal_id or "", verdict.context)
        status = await self._connect(handshake, authorizer)
        if not 200 <= status < 300:
            return _json_response(status, answers.handshake_body(status))
        self._pending[websocket] = _Pending(handshake, authorizer)
        return None

    def _handshake(self, websocket: ServerConnection, request: Request) -> events.Handshake:
        host = request.headers.get("Host") or "{}:{}".format(*websocket.local_address[:2])
        return events.Handshake(
            connection_id=ids.connection_id(),
            connected_at_ms=events.now_ms(),
            source_ip=str(websocket.remote_address[0]),
            user_agent=request.headers.get("User-Agent"),
            domain_name=host,
            headers=tuple(request.headers.raw_items()),
            query=tuple(parse_qsl(urlsplit(request.path).query, keep_blank_values=True)),
        )

    async def _authorize(self, handshake: events.Handshake) -> answers.AuthorizerVerdict:
        event = events.authorizer_event(self.api, handshake, at_ms=events.now_ms())
        logged = self.event_log.record(events.AUTHORIZER, event)
        call = await self._runtime.invoke(self._authorizer, event, caller=handshake.connection_id)
        verdict = answers.authorizer_verdict(call.answer, call.error, event["methodArn"])
        _finish(logged, verdict.status, call)
        return verdict

    async def _connect(self, handshake: events.Handshake, authorizer: Mapping[str, Any]) -> int:
        event = events.connect_event(self.api, handshake, authorizer, at_ms=events.now_ms())
        logged = self.event_log.record(events.CONNECT, event)
        call = await self._invoke(events.CONNECT, event, handshake.connection_id)
        status = answers.connect_status(call.answer, call.error)
        _finish(logged, status, call)
        user = str(authorizer.get("username") or authorizer.get("principalId"))
        self._console.call(user, handshake.connection_id, events.CONNECT, status, call)
        return status

    # -- an open connection

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        pending = self._pending.pop(websocket)
        connection = ClientSocket(pending.handshake, pending.authorizer, websocket, self.limits)
        self._connections[connection.id] = connection
        watchdog = asyncio.create_task(self._close_when_idle_or_old(connection))
        try:
            await self._receive(connection)
        finally:
            watchdog.cancel()
            # Gone for the management API before $disconnect runs, as on AWS.
            del self._connections[connection.id]
        await websocket.wait_closed()
        if not connection.stale:
            await self._disconnect(connection)

    async def _receive(self, connection: ClientSocket) -> None:
        websocket = connection.websocket
        with contextlib.suppress(ConnectionClosed):
            async for message in websocket:
                connection.touch()
                if isinstance(message, bytes):
                    await websocket.close(CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
                    return
                self._spawn(connection, self._route(connection, message))

    async def _route(self, connection: ClientSocket, body: str) -> None:
        route_key = events.select_route(body, self._routes)
        event = events.message_event(
            self.api,
            connection.handshake,
            connection.authorizer,
            route_key=route_key,
            body=body,
            at_ms=events.now_ms(),
        )
        logged = self.event_log.record(route_key, event)
        call = await self._invoke(route_key, event, connection.id)
        status = 200 if call.error is None else (504 if call.timed_out else 500)
        _finish(logged, status, call)
        self._console.call(connection.user, connection.id, route_key, status, call)
        if call.error is not None:
            message = "Endpoint request timed out" if call.timed_out else "Internal server error"
            frame = answers.integration_error_frame(
                message, connection.id, event["requestContext"]["requestId"]
            )
            with contextlib.suppress(GoneConnection):
                await self.post(connection.id, frame.encode())

    async def _disconnect(self, connection: ClientSocket) -> None:
        websocket = connection.websocket
        # The code that ended the connection: the client's, or ours when we closed it.
        close = websocket.protocol.close_sent if _we_closed(websocket) else websocket.protocol.close_rcvd
        code = close.code if close is not None else CloseCode.ABNORMAL_CLOSURE
        reason = close.reason if close is not None else ""
        event = events.disconnect_event(
            self.api,
            connection.handshake,
            connection.authorizer,
            status_code=code,
            reason=reason,
            at_ms=events.now_ms(),
        )
        logged = self.event_log.record(events.DISCONNECT, event)
        call = await self._invoke(events.DISCONNECT, event, connection.id)
        status = 200 if call.error is None else 500
        _finish(logged, status, call)
        self._console.call(connection.user, connection.id, events.DISCONNECT, status, call, detail=str(code))

    async def _close_when_idle_or_old(self, connection: ClientSocket) -> None:
        while True:
            deadline = min(
                connection.last_active + connection.limits.idle_timeout_s,
                connection.opened + connection.limits.max_lifetime_s,
            )
            now = time.monotonic()
            if now >= deadline:
                await connection.websocket.close(CloseCode.GOING_AWAY, GOING_AWAY)
                return
            await asyncio.sleep(deadline - now)

    async def _invoke(self, route_key: str, event: dict[str, Any], connection_id: str) -> Invocation:
        # Keyed by connection: one connection's backlog never delays another's (instances.py).
        return await self._runtime.invoke(
            self._routes[route_key], event, wait_s=INTEGRATION_TIMEOUT_S, caller=connection_id
        )

    def _spawn(self, connection: ClientSocket, coroutine: Any) -> None:
        # Keep a reference: the event loop holds tasks weakly.
        task = asyncio.create_task(coroutine)
        connection.tasks.add(task)
        task.add_done_callback(connection.tasks.discard)


def _finish(logged: events.LoggedEvent, status: int, call: Invocation) -> None:
    error = f"{type(call.error).__name__}: {call.error}" if call.error is not None else ""
    logged.finish(status, call.duration_ms, error)


def _we_closed(websocket: ServerConnection) -> bool:
    protocol = websocket.protocol
    if protocol.close_sent is None:
        return False
    # When both sides sent a close frame, the first one decided; websockets records which it was.
    return protocol.close_rcvd is None or protocol.close_rcvd_then_sent is False


def _json_response(status: int, body: bytes) -> Response:
    reason = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}.get(status, "Error")
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
    return Response(status, reason, headers, body)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
