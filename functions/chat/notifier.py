"""The API Gateway management API adapter: post frames to connections, one or many at a time.

Fan-out is best effort per recipient: a 410 marks the connection gone (the caller prunes it), a 429
or 5xx is retried with jittered exponential backoff, and one failure never stops delivery to the
others. Every post is bounded in time, so a hung endpoint cannot hold a Lambda past API Gateway's
29-second integration timeout.

Why not boto3's ``post_to_connection``, nor threads: a fan-out is thousands of identical small
POSTs, and in Python its cost is CPU, not network. boto3's request pipeline costs about 1 ms of CPU
a call; botocore's ``SigV4Auth`` over urllib3 on a thread pool still about 0.6 ms (thread switches
and ``http.client``'s header parsing dominate), so one process tops out near 1,500 posts/s. Here
the posts share one asyncio loop over keep-alive connections (``workers`` of them, so that many
posts are in flight), the signing key and the body's hash are computed once per fan-out, and the
response is read with a few byte operations: about 0.1 ms a post (docs/benchmarks/fanout.md).
The signature is the one botocore's ``SigV4Auth`` computes (tests/benchmarks/test_signing.py).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import random
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import botocore.session
from botocore.credentials import ReadOnlyCredentials
from botocore.httpsession import where as ca_bundle

from chat import config
from chat.observability import logger

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A network failure or a response we cannot read: worth retrying, like a 503.
NETWORK_FAILURE = 503
_SERVICE = "execute-api"
_MAX_HEAD_BYTES = 64 * 1024


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


@dataclass
class FanoutReport:
    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, connection_id: str, outcome: Delivery) -> None:
        if outcome is Delivery.DELIVERED:
            self.delivered += 1
        elif outcome is Delivery.GONE:
            self.gone.append(connection_id)
        else:
            self.failed.append(connection_id)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 1.0
    connect_timeout: float = 2.0
    read_timeout: float = 3.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff: spreads retries of many posts over time."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def management_endpoint(*, api_id: str, region: str, stage: str, url_suffix: str | None = None) -> str:
    """The management API of a WebSocket API. Built from the API id, not the event's domain name:
    behind a custom domain the domain name does not serve @connections. The host ends in the
    partition's suffix (``url_suffix``, else ``chat.config.url_suffix``: amazonaws.com.cn in China)."""
    suffix = url_suffix or config.url_suffix(region)
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"


class Notifier:
    def __init__(self, endpoint: str, *, workers: int, region: str, retry: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.workers = workers  # posts in flight at once (one keep-alive connection each)
        self.region = region
        self.retry = retry or RetryPolicy()
        parts = urlsplit(self.endpoint)
        self._address = _Address(
            host=parts.hostname or "",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            netloc=parts.netloc,
            path=parts.path,
            tls=parts.scheme == "https",
        )
        self._credentials_lock = threading.Lock()
        self._session = botocore.session.get_session()

    def send(self, connection_id: str, frame: str) -> Delivery:
        """Post one frame, retrying throttling and server errors; never raises."""
        return self._run([connection_id], frame.encode())[0]

    def send_many(self, connection_ids: Iterable[str], frame: str) -> FanoutReport:
        """Post the same frame to many connections, at most ``workers`` posts in flight."""
        ids = list(connection_ids)
        report = FanoutReport()
        for connection_id, outcome in zip(ids, self._run(ids, frame.encode()), strict=True):
            report.add(connection_id, outcome)
        return report

    # ---- the event loop --------------------------------------------------------------------------

    def _run(self, ids: list[str], data: bytes) -> list[Delivery]:
        if not ids:
            return []
        job = _Job(ids, data, _Signer(self._credentials(), self.region, data))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_here(job)
        # Called from inside a running loop (not how Lambda calls us): post from a thread of our own.
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(self._run_here, job).result()

    def _run_here(self, job: _Job) -> list[Delivery]:
        return _thread_state().loop.run_until_complete(self._post_all(job))

    async def _post_all(self, job: _Job) -> list[Delivery]:
        outcomes: list[Delivery] = [Delivery.FAILED] * len(job.ids)
        pending = iter(enumerate(job.ids))
        lanes = min(self.workers, len(job.ids))
        await asyncio.gather(*(self._lane(job, pending, outcomes) for _ in range(lanes)))
        return outcomes

    async def _lane(self, job: _Job, pending: Iterator[tuple[int, str]], outcomes: list[Delivery]) -> None:
        """One connection posting one frame after another until no recipient is left."""
        connection: _Connection | None = None
        try:
            for index, connection_id in pending:
                outcome, connection = await self._deliver(job, connection_id, connection)
                outcomes[index] = outcome
        finally:
            if connection is not None:
                _thread_state().release(self._address, connection, keep=self.workers)

    async def _deliver(
        self, job: _Job, connection_id: str, connection: _Connection | None
    ) -> tuple[Delivery, _Connection | None]:
        path = f"{self._address.path}/@connections/{quote(connection_id, safe='')}"
        status = NETWORK_FAILURE
        for attempt in range(self.retry.attempts):
            await job.throttle.wait()
            status, connection = await self._post(job, path, connection)
            if status < 300:
                return Delivery.DELIVERED, connection
            if status == 410:
                return Delivery.GONE, connection
            if status not in RETRYABLE_STATUSES:
                break
            delay = self.retry.delay(attempt)
            if status == 429:
                job.throttle.hold_for(delay)
            await asyncio.sleep(delay)
        logger.warning("post failed", connection_id=connection_id, status=status)
        return Delivery.FAILED, connection

    async def _post(
        self, job: _Job, path: str, connection: _Connection | None
    ) -> tuple[int, _Connection | None]:
        """One signed POST; a network failure counts as a 503. A kept-alive connection that the
        server closed while it sat idle is replaced at once, without using up an attempt."""
        for _ in range(2):
            connection = connection or await self._connection()
            if connection is None:
                return NETWORK_FAILURE, None
            try:
                async with asyncio.timeout(self.retry.read_timeout):
                    status = await connection.exchange(
                        job.signer.request(path, self._address.netloc, job.data)
                    )
            except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
                connection.close()
                stale = connection.answered > 0 and isinstance(exc, ConnectionError | EOFError)
                connection = None
                if not stale:
                    logger.debug("post attempt failed", error=repr(exc))
                    return NETWORK_FAILURE, None
                continue
            if not connection.reusable:
                connection.close()
                connection = None
            return status, connection
        return NETWORK_FAILURE, None

    async def _connection(self) -> _Connection | None:
        idle = _thread_state().idle_connection(self._address)
        if idle is not None:
            return idle
        try:
            async with asyncio.timeout(self.retry.connect_timeout):
                return await _Connection.open(self._address)
        except OSError as exc:  # TimeoutError and ssl.SSLError are OSErrors
            logger.debug("connect failed", error=repr(exc))
            return None

    def _credentials(self) -> ReadOnlyCredentials:
        with self._credentials_lock:
            credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign management API calls with")
        return credentials.get_frozen_credentials()


@dataclass(frozen=True)
class _Address:
    host: str
    port: int
    netloc: str  # the Host header, as botocore signs it
    path: str  # the stage, e.g. /prod
    tls: bool


@dataclass(frozen=True)
class _Job:
    ids: list[str]
    data: bytes
    signer: _Signer
    throttle: _Throttle = field(default_factory=lambda: _Throttle())


class _Throttle:
    """A 429 is about the account's request rate, not one connection: when one post is throttled,
    every lane of the fan-out holds back for the same backoff, instead of each post finding out for
    itself and using up its attempts on a quota that is still exhausted."""

    def __init__(self) -> None:
        self.until = 0.0

    def hold_for(self, seconds: float) -> None:
        self.until = max(self.until, time.monotonic() + seconds)

    async def wait(self) -> None:
        remaining = self.until - time.monotonic()
        if remaining > 0:
            # Resume spread over as long again, not all lanes in one burst into the same quota.
            await asyncio.sleep(remaining + random.uniform(0, remaining))


class _ThreadState:
    """A thread's event loop and its idle keep-alive connections, by address.

    Kept per thread, not per notifier: Lambda runs one invocation at a time in a sandbox, but the
    local stack runs several on threads, and the connections must outlive a warm invocation (a TLS
    handshake costs more CPU than a post). When the thread ends, its connections are closed.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.idle: dict[_Address, list[_Connection]] = {}
        weakref.finalize(self, _close_all, self.loop, self.idle)

    def idle_connection(self, address: _Address) -> _Connection | None:
        connections = self.idle.get(address, [])
        while connections:
            connection = connections.pop()
            if connection.reusable:
                return connection
            connection.close()
        return None

    def release(self, address: _Address, connection: _Connection, *, keep: int) -> None:
        connections = self.idle.setdefault(address, [])
        if connection.reusable and len(connections) < keep:
            connections.append(connection)
        else:
            connection.close()


_threads = threading.local()


def _thread_state() -> _ThreadState:
    state: _ThreadState | None = getattr(_threads, "state", None)
    if state is None:
        state = _threads.state = _ThreadState()
    return state


def _close_all(loop: asyncio.AbstractEventLoop, idle: dict[_Address, list[_Connection]]) -> None:
    """Close a finished thread's connections, and run its loop once so that they really close."""
    try:
        for connections in idle.values():
            for connection in connections:
                connection.close()
        if not loop.is_running():
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
    except Exception as exc:  # noqa: BLE001 - a finalizer must not raise; the sockets close with the process
        logger.debug("closing idle connections failed", error=repr(exc))


class _Signer:
    """AWS Signature Version 4 for POSTs of one body, as botocore's ``SigV4Auth`` signs them.

    The body's hash is computed once and the signing key once per day, leaving one SHA-256 and one
    HMAC per post instead of ``SigV4Auth``'s request objects and six HMACs.
    """

    def __init__(self, credentials: ReadOnlyCredentials, region: str, data: bytes) -> None:
        self.credentials = credentials
        self.region = region
        self.payload_hash = hashlib.sha256(data).hexdigest()
        self._second = -1
        self._stamp = ""
        self._day = ""
        self._key = b""

    def headers(self, path: str, netloc: str, now: float | None = None) -> list[tuple[str, str]]:
        """X-Amz-Date, X-Amz-Security-Token (with temporary credentials) and Authorization."""
        stamp = self._timestamp(time.time() if now is None else now)
        token = self.credentials.token
        signed = "host;x-amz-date;x-amz-security-token" if token else "host;x-amz-date"
        canonical_headers = f"host:{netloc}\nx-amz-date:{stamp}\n" + (
            f"x-amz-security-token:{token}\n" if token else ""
        )
        canonical_request = "\n".join(
            ["POST", quote(path, safe="/~"), "", canonical_headers, signed, self.payload_hash]
        )
        scope = f"{self._day}/{self.region}/{_SERVICE}/aws4_request"
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        signature = hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers = [("X-Amz-Date", stamp)]
        if token:
            headers.append(("X-Amz-Security-Token", token))
        headers.append(
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={self.credentials.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}",
            )
        )
        return headers

    def request(self, path: str, netloc: str, data: bytes) -> bytes:
        """The whole HTTP/1.1 request: head and body."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {netloc}", f"Content-Length: {len(data)}"]
        lines += [f"{name}: {value}" for name, value in self.headers(path, netloc)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            if self._stamp[:8] != self._day:
                self._day = self._stamp[:8]
                self._key = _signing_key(self.credentials.secret_key or "", self._day, self.region)
        return self._stamp


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, _SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class _Connection:
    """One HTTP/1.1 connection, one request at a time; kept alive unless the server says no."""

    _tls_context: ssl.SSLContext | None = None

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.keep_alive = True
        self.answered = 0

    @classmethod
    async def open(cls, address: _Address) -> _Connection:
        tls = cls._tls() if address.tls else None
        reader, writer = await asyncio.open_connection(
            address.host, address.port, ssl=tls, limit=_MAX_HEAD_BYTES
        )
        return cls(reader, writer)

    @classmethod
    def _tls(cls) -> ssl.SSLContext:
        # The CA bundle botocore itself verifies AWS endpoints with.
        if cls._tls_context is None:
            cls._tls_context = ssl.create_default_context(cafile=ca_bundle())
        return cls._tls_context

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.writer.is_closing() and not self.reader.at_eof()

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its response through; the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        version, status = status_line.split(b" ", 2)[:2]
        headers = _parse_headers(header_block)
        connection = headers.get(b"connection", b"").lower()
        self.keep_alive = connection == b"keep-alive" if version == b"HTTP/1.0" else connection != b"close"
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            await self._skip_chunks()
        elif b"content-length" in headers:
            await self.reader.readexactly(int(headers[b"content-length"]))
        else:  # the body runs to the end of the connection
            self.keep_alive = False
            await self.reader.read()
        self.answered += 1
        return int(status)

    async def _skip_chunks(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return

    def close(self) -> None:
        self.keep_alive = False
        self.writer.close()


def _parse_headers(block: bytes) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers
