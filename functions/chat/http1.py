"""HTTP/1.1 to the management API: h11 (the Sans-I/O HTTP/1.1 library) for the protocol, asyncio
streams for the bytes, and a small pool of kept-alive connections per thread.

h11 does what is easy to get wrong by hand: every response framing (Content-Length, chunked, a
body running to the close, and the statuses such as 204 and 304 that have no body whatever the
headers say), ``Connection: close`` and HTTP/1.0, and strict parsing. What stays here is what a
fan-out needs and a general client does not do cheaply: posts bound to one lane each, and the rules
for which idle connection may be used again.

A kept-alive socket can die without a word: a Lambda sandbox is frozen between invocations, and
whatever the other end or the network did meanwhile (a FIN, a reset, dropped state) may never reach
it. A write to such a socket succeeds; only the read times out. So a connection is reused only
within the invocation that opened it (``begin_invocation``) and only if it has been idle for less
than a few seconds.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
from botocore.httpsession import where as ca_bundle

_MAX_HEAD_BYTES = 64 * 1024
_READ_SIZE = 64 * 1024
_END = h11.EndOfMessage()


class StaleConnection(ConnectionError):
    """A kept-alive connection the server had closed while it sat idle: the request never reached
    it, so it is safe to send again at once, on a new connection."""


class BrokenResponse(ValueError):
    """The server's answer is not HTTP/1.1 that h11 accepts, or it ended before it was complete."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    netloc: str  # the Host header, as botocore signs it
    path: str  # the stage, e.g. /prod
    tls: bool

    @classmethod
    def of(cls, endpoint: str) -> Address:
        parts = urlsplit(endpoint)
        tls = parts.scheme == "https"
        return cls(
            host=parts.hostname or "",
            port=parts.port or (443 if tls else 80),
            netloc=parts.netloc,
            path=parts.path.rstrip("/"),
            tls=tls,
        )


@functools.cache  # once per process: loading the bundle costs milliseconds
def tls_context() -> ssl.SSLContext:
    """Certificates and host names verified, against the CA bundle botocore itself trusts."""
    return ssl.create_default_context(cafile=ca_bundle())


class HttpConnection:
    """One HTTP/1.1 connection, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, invocation: int) -> None:
        self._reader = reader
        self._writer = writer
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
        self.invocation = invocation  # the invocation it was opened in (see ``Pool``)
        self.answered = 0
        self.idle_since = time.monotonic()
        # The read timeout: one timer a connection, moved on lazily, not one scheduled a post.
        self._deadline: float | None = None  # of the post in flight
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timed_out = False

    @classmethod
    async def open(cls, address: Address, invocation: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(
            address.host,
            address.port,
            ssl=tls_context() if address.tls else None,
            server_hostname=address.host if address.tls else None,
            limit=_READ_SIZE,
        )
        return cls(reader, writer, invocation)

    async def post(
        self, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, *, timeout: float
    ) -> int:
        """Send one POST and read its response through; the status code. Raises ``TimeoutError``
        when the response is not all in within ``timeout`` seconds (the connection is then closed),
        ``StaleConnection`` when a connection that had already answered is found closed before any
        byte of the answer."""
        http = self._http
        received = 0
        self._start_clock(timeout)
        try:
            request = h11.Request(method=b"POST", target=target, headers=headers)
            chunks = http.send_with_data_passthrough(request) or []
            chunks += http.send_with_data_passthrough(h11.Data(data=body)) or []
            chunks += http.send_with_data_passthrough(_END) or []
            self._writer.write(b"".join(chunks))
            status = 0
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    data = await self._reader.read(_READ_SIZE)
                    received += len(data)
                    http.receive_data(data)  # b"": the server closed its side
                elif type(event) is h11.Response:
                    status = event.status_code
                elif type(event) is h11.EndOfMessage:
                    return self._answered(status)
                elif type(event) is h11.ConnectionClosed:
                    raise h11.RemoteProtocolError("connection closed before the response")
                # InformationalResponse (1xx) and the body's Data are read past.
        except (ConnectionError, h11.ProtocolError) as exc:
            if self._timed_out:
                raise TimeoutError(f"no complete answer within {timeout} s") from exc
            if self.answered and not received:
                raise StaleConnection(str(exc)) from exc
            if isinstance(exc, h11.ProtocolError):
                raise BrokenResponse(str(exc)) from exc
            raise
        finally:
            self._deadline = None

    def _start_clock(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        if self._timer is None:
            self._timer_at = self._deadline
            self._timer = loop.call_at(self._timer_at, self._on_timer)

    def _on_timer(self) -> None:
        """Due: a post still unanswered at its deadline is cut off (the read then ends); a post that
        started later gets the timer again, at its own deadline."""
        self._timer = None
        if self._deadline is None:
            return
        if self._deadline > self._timer_at:
            self._timer_at = self._deadline
            self._timer = asyncio.get_running_loop().call_at(self._timer_at, self._on_timer)
            return
        self._timed_out = True
        self._writer.transport.abort()

    def _answered(self, status: int) -> int:
        self.answered += 1
        http = self._http
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()  # kept alive; otherwise h11 says MUST_CLOSE and it is not reused
        self.idle_since = time.monotonic()
        return status

    @property
    def reusable(self) -> bool:
        return (
            self._http.our_state is h11.IDLE and not self._writer.is_closing() and not self._reader.at_eof()
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writer.close()


@dataclass
class Pool:
    """A thread's idle kept-alive connections, by address.

    Kept per thread, not per notifier: Lambda runs one invocation at a time in a sandbox, but the
    local stack runs several on threads, and the connections must outlive one fan-out (a sync posts
    frame after frame, and a TLS handshake costs more CPU than a post). They never outlive the
    invocation: a sandbox may be frozen for minutes after it.
    """

    idle: dict[Address, list[HttpConnection]] = field(default_factory=dict)
    invocation: int = 0

    def take(self, address: Address, *, max_idle: float) -> HttpConnection | None:
        """The most recently used connection fit to reuse; the others found unfit are closed."""
        connections = self.idle.get(address, [])
        oldest_allowed = time.monotonic() - max_idle
        while connections:
            connection = connections.pop()
            if self._fit(connection, oldest_allowed):
                return connection
            connection.close()
        return None

    def give_back(self, address: Address, connection: HttpConnection, *, keep: int) -> None:
        connections = self.idle.setdefault(address, [])
        if connection.reusable and connection.invocation == self.invocation and len(connections) < keep:
            connections.append(connection)
        else:
            connection.close()

    def discard(self, address: Address) -> None:
        """Close every idle connection to ``address``: one of their kind was found dead."""
        for connection in self.idle.pop(address, []):
            connection.close()

    def close_all(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()

    def _fit(self, connection: HttpConnection, oldest_allowed: float) -> bool:
        return (
            connection.invocation == self.invocation
            and connection.idle_since >= oldest_allowed
            and connection.reusable
        )
