"""A load generator for the management-API double alone: ``connections`` keep-alive clients on one
asyncio loop, each posting the same pre-built request as soon as the last one was answered. It runs
in its own process and measures the double's throughput and CPU per request, to show that the double
is not what the fan-out benchmark measures."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

from benchmarks.management_double import HOST, STAGE


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, remaining: list[int], done: asyncio.Future[None]) -> None:
        self.request, self.remaining, self.done = request, remaining, done
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._next()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0:  # the double's answers to message posts have no body
            self.buffer = self.buffer[end + 4 :]
            self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if self.remaining[0] <= 0:
            self.transport.close()
            if not self.done.done() and self.remaining[1] == 1:
                self.done.set_result(None)
            self.remaining[1] -= 1
            return
        self.remaining[0] -= 1
        self.transport.write(self.request)


async def _load(port: int, requests: int, connections: int) -> float:
    body = b'{"type":"message","text":"load"}'
    request = (
        f"POST /{STAGE}/@connections/load%3D HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    remaining = [requests, connections]  # requests left to send, clients still open
    started = time.monotonic()
    for _ in range(connections):
        await loop.create_connection(lambda: _Client(request, remaining, done), HOST, port)
    await asyncio.wait_for(done, timeout=120)
    return time.monotonic() - started


def _run(port: int, requests: int, connections: int, answer: Any) -> None:
    answer.send(asyncio.run(_load(port, requests, connections)))


def load(port: int, requests: int, connections: int) -> float:
    """Seconds to get ``requests`` answered (the generator in a process of its own)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run, args=(port, requests, connections, sender), daemon=True)
    process.start()
    if not receiver.poll(180):
        process.kill()
        raise RuntimeError("the load generator did not finish")
    seconds = float(receiver.recv())
    process.join(timeout=10)
    return seconds
