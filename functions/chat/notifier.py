"""The API Gateway management API adapter: post frames to connections, one or many at a time.

Fan-out is best effort per recipient: a 410 marks the connection gone (the caller prunes it), a 429
or 5xx is retried with jittered exponential backoff (``retries.py``), and one failure never stops
delivery to the others. Every post is bounded in time, so a hung endpoint cannot hold a Lambda past
API Gateway's 29-second integration timeout.

Why not boto3's ``post_to_connection`` on a thread pool: a fan-out is thousands of identical small
POSTs, and in Python its cost is CPU, not network. boto3's request pipeline costs well over 1 ms of
CPU a call, threads or not. Here the posts share one asyncio loop over kept-alive connections
(``workers`` of them, so that many posts are in flight), HTTP/1.1 is h11's (``http1.py``), and each
request is signed with a key and a body hash computed once per fan-out (``sigv4.py``): several
times less CPU a post (docs/benchmarks/fanout.md).
"""

from __future__ import annotations

import asyncio
import enum
import threading
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import botocore.session
from botocore.credentials import ReadOnlyCredentials

from chat import config
from chat.http1 import Address, BrokenResponse, HttpConnection, Pool, StaleConnection
from chat.observability import logger
from chat.retries import NETWORK_FAILURE, RETRYABLE_STATUSES, RetryPolicy, Throttle
from chat.sigv4 import Signer, quote_segment

__all__ = ["Delivery", "FanoutReport", "Notifier", "RetryPolicy", "begin_invocation", "management_endpoint"]


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


def management_endpoint(*, api_id: str, region: str, stage: str, url_suffix: str | None = None) -> str:
    """The management API of a WebSocket API. Built from the API id, not the event's domain name:
    behind a custom domain the domain name does not serve @connections. The host ends in the
    partition's suffix (``url_suffix``, else ``chat.config.url_suffix``: amazonaws.com.cn in China)."""
    suffix = url_suffix or config.url_suffix(region)
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"


def begin_invocation() -> None:
    """Called as each invocation starts: connections kept alive by earlier invocations on this
    thread are not reused (the sandbox may have been frozen since; see ``http1.py``)."""
    _thread_state().pool.invocation += 1


def lanes_for(recipients: int, workers: int, posts_per_connection: int) -> int:
    """How many connections a fan-out to ``recipients`` opens: one for every ``posts_per_connection``
    recipients (rounded up), at most ``workers``, at least one."""
    return max(1, min(workers, -(-recipients // posts_per_connection)))


class Notifier:
    def __init__(
        self,
        endpoint: str,
        *,
        workers: int,
        region: str,
        retry: RetryPolicy | None = None,
        posts_per_connection: int = 1,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.workers = workers  # posts in flight at once, at most (one kept-alive connection each)
        # Recipients per connection opened: each invocation opens its connections anew (none kept
        # alive from an earlier one is trusted, see http1.py), and a new connection costs a TCP and
        # TLS handshake of CPU, many times a post's. 1: as many lanes as recipients, up to ``workers``.
        self.posts_per_connection = posts_per_connection
        self.region = region
        self.retry = retry or RetryPolicy()
        self._address = Address.of(self.endpoint)
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
        address = self._address
        prefix = f"{address.path}/@connections/"
        signer = Signer(self._credentials(), self.region, data, netloc=address.netloc, prefix=prefix)
        job = _Job(
            ids,
            data,
            signer,
            prefix.encode(),
            [(b"Host", address.netloc.encode()), (b"Content-Length", str(len(data)).encode())],
        )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_here(job)
        # Called from inside a running loop (not how Lambda calls us): post from a thread of our own.
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(self._run_here, job).result()

    def _run_here(self, job: _Job) -> list[Delivery]:
        state = _thread_state()
        return state.loop.run_until_complete(self._post_all(job, state.pool))

    async def _post_all(self, job: _Job, pool: Pool) -> list[Delivery]:
        outcomes: list[Delivery] = [Delivery.FAILED] * len(job.ids)
        pending = iter(enumerate(job.ids))
        lanes = lanes_for(len(job.ids), self.workers, self.posts_per_connection)
        await asyncio.gather(*(_Lane(self, job, pool).run(pending, outcomes) for _ in range(lanes)))
        return outcomes

    def _credentials(self) -> ReadOnlyCredentials:
        with self._credentials_lock:
            credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign management API calls with")
        return credentials.get_frozen_credentials()


@dataclass(frozen=True)
class _Job:
    ids: list[str]
    data: bytes
    signer: Signer
    target_prefix: bytes  # {stage}/@connections/
    fixed_headers: list[tuple[bytes, bytes]]  # Host and Content-Length: the same in every post
    throttle: Throttle = field(default_factory=Throttle)


class _Lane:
    """One connection posting one frame after another until no recipient is left."""

    def __init__(self, notifier: Notifier, job: _Job, pool: Pool) -> None:
        self.job = job
        self.pool = pool
        self.address = notifier._address
        self.retry = notifier.retry
        self.keep = notifier.workers
        self.connection: HttpConnection | None = None

    async def run(self, pending: Iterator[tuple[int, str]], outcomes: list[Delivery]) -> None:
        try:
            for index, connection_id in pending:
                outcomes[index] = await self.deliver(connection_id)
        finally:
            if self.connection is not None:
                self.pool.give_back(self.address, self.connection, keep=self.keep)

    async def deliver(self, connection_id: str) -> Delivery:
        """Post to one connection: its outcome after at most ``attempts`` tries."""
        segment = quote_segment(connection_id)
        status = NETWORK_FAILURE
        for attempt in range(self.retry.attempts):
            await self.job.throttle.wait()
            status = await self.post(segment)
            if status < 300:
                return Delivery.DELIVERED
            if status == 410:
                return Delivery.GONE
            if status not in RETRYABLE_STATUSES:
                break
            delay = self.retry.delay(attempt)
            if status == 429:
                self.job.throttle.hold_for(delay)
            await asyncio.sleep(delay)
        logger.warning("post failed", connection_id=connection_id, status=status)
        return Delivery.FAILED

    async def post(self, segment: str) -> int:
        """One signed POST; the status, a network failure counting as a 503. A kept-alive connection
        found closed is replaced at once by a new one, without using up an attempt; one that stays
        silent costs one attempt, and every idle connection opened alongside it is dropped too."""
        for fresh in (False, True):
            connection = self.connection or await self.connect(fresh=fresh)
            self.connection = None
            if connection is None:
                return NETWORK_FAILURE
            job = self.job
            target = job.target_prefix + segment.encode()
            headers = job.fixed_headers + job.signer.headers(segment)
            try:
                status = await connection.post(target, headers, job.data, timeout=self.retry.read_timeout)
            except StaleConnection:
                connection.close()
                continue
            except (OSError, BrokenResponse) as exc:  # TimeoutError and ssl.SSLError are OSErrors
                connection.close()
                if connection.answered:
                    self.pool.discard(self.address)
                logger.debug("post attempt failed", error=repr(exc))
                return NETWORK_FAILURE
            if connection.reusable:
                self.connection = connection
            else:
                connection.close()
            return status
        return NETWORK_FAILURE

    async def connect(self, *, fresh: bool) -> HttpConnection | None:
        if not fresh:
            idle = self.pool.take(self.address, max_idle=self.retry.max_idle)
            if idle is not None:
                return idle
        try:
            async with asyncio.timeout(self.retry.connect_timeout):
                return await HttpConnection.open(self.address, self.pool.invocation)
        except OSError as exc:  # TimeoutError and ssl.SSLError are OSErrors
            logger.debug("connect failed", error=repr(exc))
            return None


class _ThreadState:
    """A thread's event loop and its pool of idle kept-alive connections. When the thread ends, its
    connections are closed."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = Pool()
        weakref.finalize(self, _close_all, self.loop, self.pool)


_threads = threading.local()


def _thread_state() -> _ThreadState:
    state: _ThreadState | None = getattr(_threads, "state", None)
    if state is None:
        state = _threads.state = _ThreadState()
    return state


def _close_all(loop: asyncio.AbstractEventLoop, pool: Pool) -> None:
    """Close a finished thread's connections, and run its loop once so that they really close."""
    try:
        pool.close_all()
        if not loop.is_running():
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
    except Exception as exc:  # noqa: BLE001 - a finalizer must not raise; the sockets close with the process
        logger.debug("closing idle connections failed", error=repr(exc))
