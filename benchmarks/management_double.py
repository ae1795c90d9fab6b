"""A fast stand-in for API Gateway's management API, for load: HTTP/1.1 keep-alive on one asyncio
loop, an injected latency per call and an optional request quota answered with 429s.

It counts ``message`` frames per connection id so a benchmark can check that every connection got
exactly one, and notes when the last one arrived (``time.monotonic``: one clock for every process
on the machine). It answers ``POST /<stage>/@connections/<id>`` and ``GET`` of the same path (200,
counted as ``lookups``: the connection exists), plus two control routes:

- ``POST /_control/reset`` with ``{"latency_s", "quota_per_s", "burst"}``: forget the counts;
- ``GET /_control/stats``: the counts, the throttled posts, its own CPU time.

Written on ``asyncio.Protocol`` and ``call_later`` (no task or stream per request) so that it costs
a few tens of microseconds of CPU a request and is never what a benchmark measures.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

HOST = "127.0.0.1"
STAGE = "prod"
MESSAGE_MARK = b'"type":"message"'
_CONNECTIONS_PREFIX = f"/{STAGE}/@connections/"


def _response(status: int, reason: str, body: bytes = b"", error: str | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Content-Type: application/json"]
    if error:
        head.append(f"x-amzn-ErrorType: {error}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


OK = _response(200, "OK")
THROTTLED = _response(429, "Too Many Requests", b'{"message":"Rate exceeded"}', "LimitExceededException")
NOT_FOUND = _response(404, "Not Found", b'{"message":"Not Found"}')
CONNECTION = _response(200, "OK", b'{"connectedAt":"2026-01-01T00:00:00.000Z","identity":{}}')


class TokenBucket:
    """API Gateway's account quota: ``rate`` requests a second, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Ledger:
    """What the double saw since the last reset."""

    latency_s: float = 0.0
    bucket: TokenBucket | None = None
    messages: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    throttled: int = 0
    other_frames: int = 0
    lookups: int = 0
    first_message_at: float = 0.0
    last_message_at: float = 0.0

    def reset(self, *, latency_s: float, bucket: TokenBucket | None) -> None:
        """Start counting afresh (the ledger object is shared by every open connection)."""
        self.latency_s, self.bucket = latency_s, bucket
        self.messages = Counter()
        self.posts = self.throttled = self.other_frames = self.lookups = 0
        self.first_message_at = self.last_message_at = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "throttled": self.throttled,
            "other_frames": self.other_frames,
            "lookups": self.lookups,
            "messages": dict(self.messages),
            "first_message_at": self.first_message_at,
            "last_message_at": self.last_message_at,
            "cpu_s": time.process_time(),
        }


class DoubleProtocol(asyncio.Protocol):
    """One client connection: parse requests from the buffer, answer each after the latency."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = _content_length(head)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = head.split(b" ", 2)[:2]
            self._answer(method, path.decode(), body)

    def _answer(self, method: bytes, path: str, body: bytes) -> None:
        if path.startswith("/_control/"):
            self._write(self._control(path, body))
            return
        if method == b"GET" and path.startswith(_CONNECTIONS_PREFIX):
            self.ledger.lookups += 1
            self._later(CONNECTION)
            return
        if method != b"POST" or not path.startswith(_CONNECTIONS_PREFIX):
            self._write(NOT_FOUND)
            return
        ledger, now = self.ledger, time.monotonic()
        ledger.posts += 1
        if ledger.bucket is not None and not ledger.bucket.take(now):
            ledger.throttled += 1
            self._later(THROTTLED)
            return
        if MESSAGE_MARK in body:
            ledger.messages[unquote(path[len(_CONNECTIONS_PREFIX) :])] += 1
            ledger.first_message_at = ledger.first_message_at or now
            ledger.last_message_at = now
        else:
            ledger.other_frames += 1
        self._later(OK)

    def _later(self, response: bytes) -> None:
        if self.ledger.latency_s > 0:
            asyncio.get_running_loop().call_later(self.ledger.latency_s, self._write, response)
        else:
            self._write(response)

    def _write(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def _control(self, path: str, body: bytes) -> bytes:
        if path == "/_control/stats":
            return _response(200, "OK", json.dumps(self.ledger.stats()).encode())
        if path == "/_control/reset":
            options = json.loads(body or b"{}")
            rate = float(options.get("quota_per_s") or 0)
            bucket = TokenBucket(rate, float(options.get("burst") or rate / 10)) if rate else None
            self.ledger.reset(latency_s=float(options.get("latency_s") or 0), bucket=bucket)
            return OK
        return NOT_FOUND


def _content_length(head: bytes) -> int:
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : end if end > 0 else None])


async def serve(ready: Any) -> None:
    ledger = Ledger()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DoubleProtocol(ledger), HOST, 0, backlog=4096)
    ready.send(server.sockets[0].getsockname()[1])
    ready.close()
    async with server:
        await server.serve_forever()


def _run(ready: Any) -> None:
    asyncio.run(serve(ready))


class ManagementDoubleProcess:
    """The double in a process of its own (its own CPU, not the sender's), until ``stop()``."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_run, args=(sender,), daemon=True, name="management-double")
        self.process.start()
        if not receiver.poll(30):
            self.process.kill()
            raise RuntimeError("the management-API double did not start")
        self.port = int(receiver.recv())

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.url}/{STAGE}"

    def reset(self, *, latency_s: float = 0.0, quota_per_s: float = 0.0, burst: float = 0.0) -> None:
        _control(
            f"{self.url}/_control/reset", {"latency_s": latency_s, "quota_per_s": quota_per_s, "burst": burst}
        )

    def stats(self) -> dict[str, Any]:
        return _control(f"{self.url}/_control/stats")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)

    def __enter__(self) -> ManagementDoubleProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _control(url: str, body: dict[str, Any] | None = None) -> Any:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as reply:
        raw = reply.read()
    return json.loads(raw) if raw else None
