"""API Gateway's management API for one stage, over HTTP, as the handlers call it.

``MANAGEMENT_ENDPOINT`` is ``http://127.0.0.1:<port>/<stage>``; the notifier's own HTTP client
(``chat.http1``, over h11, SigV4-signed) and, for GET and DELETE, boto3's
``apigatewaymanagementapi`` client (``chat.probe``, ``chat.closer``) then send:

- ``POST /<stage>/@connections/{id}`` with the data as the body: sent to the client, 200;
- ``GET`` the same path: 200 with ``ConnectedAt``, ``Identity`` and ``LastActiveAt``;
- ``DELETE``: the socket is closed, 204, and ``$disconnect`` runs as for any close.

Errors use the REST-JSON shape botocore maps onto its modeled exceptions: the code in the
``x-amzn-ErrorType`` header and ``{"message": ...}`` as the body. A closed or unknown id is
410 ``GoneException``; data over 128 KB is 413 ``PayloadTooLargeException``.

``Faults`` can slow every call down or answer a share of them with API Gateway's throttling error
(429 ``LimitExceededException``), for benchmarks and fault tests; both are off by default.

The latest calls (method, connection, status, time taken) are kept for the inspector: ``calls``.

The routes act on ``Connections``: the gateway's real sockets here, and in the handler tests
(``tests/support/management_double.py``) a recorder of what each connection was sent, which may
also refuse a post as throttled.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from local_stack.gateway import GoneConnection

MAX_PAYLOAD_BYTES = 128 * 1024
KEPT_CALLS = 300

Route = Callable[[web.Request], Awaitable[web.Response]]


class Throttled(Exception):
    """A post refused with API Gateway's throttling error (429 ``LimitExceededException``)."""


class Connections(Protocol):
    """What the routes act on; each raises ``GoneConnection`` for an id that is not open."""

    async def post(self, connection_id: str, data: bytes) -> None: ...

    def describe(self, connection_id: str) -> dict[str, Any]: ...

    def delete(self, connection_id: str) -> None: ...


@dataclass
class Faults:
    """Injected trouble: latency added to every call, and the share of calls throttled."""

    latency_s: float = 0.0
    throttle_rate: float = 0.0
    # (connection id, data) → True: answer 200 and send nothing (``breaks.py``).
    drop: Callable[[str, bytes], bool] | None = None


def aws_error(status: int, code: str, message: str) -> web.Response:
    """An error as API Gateway sends it, so botocore raises ``client.exceptions.<code>``."""
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": code})


class ManagementApi:
    """The ``@connections`` routes, bound to one gateway (or any other ``Connections``)."""

    def __init__(
        self, gateway: Connections, faults: Faults | None = None, *, seed: int | None = None
    ) -> None:
        self.faults = faults or Faults()
        self._gateway = gateway
        self._random = random.Random(seed)
        self._calls: deque[dict[str, Any]] = deque(maxlen=KEPT_CALLS)

    def add_routes(self, app: web.Application, stage: str) -> None:
        path = f"/{stage}/@connections/{{connection_id}}"
        app.router.add_post(path, self._logged(self.post))
        app.router.add_get(path, self._logged(self.get))
        app.router.add_delete(path, self._logged(self.delete))

    def calls(self) -> list[dict[str, Any]]:
        """The latest calls, newest first: method, connection id, status, milliseconds, bytes."""
        return list(reversed(self._calls))

    def _logged(self, route: Route) -> Route:
        async def logged(request: web.Request) -> web.Response:
            started = time.monotonic()
            at = datetime.now(UTC).isoformat(timespec="milliseconds")
            response = await route(request)
            self._calls.append(
                {
                    "at": at,
                    "method": request.method,
                    "connectionId": request.match_info.get("connection_id", ""),
                    "status": response.status,
                    "durationMs": round((time.monotonic() - started) * 1000, 1),
                    "bytes": request.content_length or 0,
                }
            )
            return response

        return logged

    async def post(self, request: web.Request) -> web.Response:
        if (refusal := await self._fault()) is not None:
            return refusal
        data = await request.read()
        if len(data) > MAX_PAYLOAD_BYTES:
            return aws_error(413, "PayloadTooLargeException", "Request entity too large")
        connection_id = request.match_info["connection_id"]
        if self.faults.drop is not None and self.faults.drop(connection_id, data):
            return web.Response(status=200)
        try:
            await self._gateway.post(connection_id, data)
        except GoneConnection:
            return _gone()
        except Throttled:
            return _throttled()
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        if (refusal := await self._fault()) is not None:
            return refusal
        try:
            return web.json_response(self._gateway.describe(request.match_info["connection_id"]))
        except GoneConnection:
            return _gone()

    async def delete(self, request: web.Request) -> web.Response:
        if (refusal := await self._fault()) is not None:
            return refusal
        try:
            self._gateway.delete(request.match_info["connection_id"])
        except GoneConnection:
            return _gone()
        return web.Response(status=204)

    async def _fault(self) -> web.Response | None:
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.throttle_rate > 0 and self._random.random() < self.faults.throttle_rate:
            return _throttled()
        return None


def _throttled() -> web.Response:
    return aws_error(429, "LimitExceededException", "Rate exceeded")


def _gone() -> web.Response:
    return aws_error(410, "GoneException", "Connection is gone")
