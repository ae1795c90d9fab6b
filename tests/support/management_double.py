"""API Gateway's management API for the handler tests: the local stack's own routes
(``local_stack.management``) over real HTTP, in front of a recorder instead of sockets.

moto's management API accepts every connection id and never answers 410, so the tests point the
handlers at this server instead (the notifier posts with its own HTTP client over h11; the
presence probe's GET and the closer's DELETE use boto3's). The recorder keeps what each connection
was sent, answers 410 ``GoneException`` for ids marked gone (POST and GET, as API Gateway does),
and 429 ``LimitExceededException`` a chosen number of times per connection. A DELETE closes (marks
gone). The routes, error shapes and size limit are the local stack's, so both answer alike.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from local_stack.gateway import GoneConnection
from local_stack.management import ManagementApi, Throttled

STAGE = "prod"
CONNECTION = {"connectedAt": "2026-01-01T00:00:00.000Z", "identity": {}}


class ManagementApiDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.throttle_remaining: dict[str, int] = {}
        self.attempts: dict[str, int] = defaultdict(int)
        self.log: list[tuple[str, str]] = []  # (connection id, frame type) in the order received
        self.deletes: list[str] = []  # DELETE @connections/{id}, in order (the id is then gone)
        self.lookups: list[str] = []  # connection ids asked about with GET, in order
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        # Posts are answered on threads, so that a test may hold one (tests/reliability/faults.py)
        # while the others are served; a fan-out has up to FANOUT_WORKERS in flight.
        self._answering = ThreadPoolExecutor(max_workers=64, thread_name_prefix="management-double")
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}/{STAGE}"

    def start(self) -> ManagementApiDouble:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._answering.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        with self.lock:
            self.frames.clear()
            self.gone.clear()
            self.throttle_remaining.clear()
            self.attempts.clear()
            self.log.clear()
            self.deletes.clear()
            self.lookups.clear()

    def received(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            frames = list(self.frames[connection_id])
        return [f for f in frames if frame_type is None or f.get("type") == frame_type]

    # -- the connections' side, as local_stack.management.ManagementApi calls it

    async def post(self, connection_id: str, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        status, _ = await loop.run_in_executor(self._answering, self._answer_post, connection_id, data)
        if status == 410:
            raise GoneConnection(connection_id)
        if status == 429:
            raise Throttled(connection_id)

    def describe(self, connection_id: str) -> dict[str, Any]:
        with self.lock:
            self.lookups.append(connection_id)
            if connection_id in self.gone:
                raise GoneConnection(connection_id)
        return dict(CONNECTION)

    def delete(self, connection_id: str) -> None:
        with self.lock:
            self.gone.add(connection_id)
            self.deletes.append(connection_id)

    def _answer_post(self, connection_id: str, body: bytes) -> tuple[int, str | None]:
        with self.lock:
            self.attempts[connection_id] += 1
            if connection_id in self.gone:
                return 410, "GoneException"
            if self.throttle_remaining.get(connection_id, 0) > 0:
                self.throttle_remaining[connection_id] -= 1
                return 429, "LimitExceededException"
            frame = json.loads(body)
            self.frames[connection_id].append(frame)
            self.log.append((connection_id, frame.get("type", "")))
        return 200, None

    async def _serve(self) -> None:
        app = web.Application()
        ManagementApi(self).add_routes(app, STAGE)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # A fan-out opens up to FANOUT_WORKERS connections at once: more than the default backlog.
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
