"""The management-API client over real sockets: HTTPS, keep-alive, response framings, retries and
time bounds, against small servers that answer the way API Gateway may."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from chat import http1
from chat.notifier import Delivery, Notifier, RetryPolicy, begin_invocation, lanes_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.world import ChatWorld

Answer = Callable[[bytes], bytes]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def _self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (an IP address or a DNS name) and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _server_tls(directory: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, Path]:
    """A server's TLS context with a fresh self-signed certificate for ``host``, and that certificate."""
    cert, key = _self_signed(directory, host)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    return server_tls, cert


def _trusted_server_tls(
    directory: Path, monkeypatch: pytest.MonkeyPatch, host: str = "127.0.0.1"
) -> ssl.SSLContext:
    """A server's TLS context whose certificate the notifier trusts (for this test only)."""
    server_tls, cert = _server_tls(directory, host)
    monkeypatch.setattr(http1, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    return server_tls


class RawServer:
    """A socket server whose every answer is chosen by the test; it records the requests it read.

    ``close_after_answer``: close each connection once it has answered (a FIN, no ``Connection:
    close`` said). ``kill_open_connections``: the connections open now die without a word.
    """

    def __init__(
        self, answer: Answer, tls: ssl.SSLContext | None = None, close_after_answer: bool = False
    ) -> None:
        self.answer = answer
        self.close_after_answer = close_after_answer
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._dead_below = 0  # connections numbered below this are dead
        self._dead_record = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    def kill_open_connections(self, *, record: bool) -> None:
        """From now on, requests on the connections open now get no answer, ever, and the sockets stay
        open: as if the network had dropped them. ``record``: the requests still reach the server
        (it read them and then hung) rather than vanishing."""
        self._dead_below, self._dead_record = self.connections, record

    @property
    def endpoint(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}/prod"

    def close(self) -> None:
        self._listener.close()

    def targets(self) -> list[bytes]:
        """The connection ids posted to, in the order the requests were read."""
        return [unquote_to_bytes(request.split(b" ")[1].rsplit(b"/", 1)[-1]) for request in self.requests]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.connections - 1), daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        with raw:
            try:
                client = self._tls.wrap_socket(raw, server_side=True) if self._tls else raw
            except OSError:
                return
            with client:
                self._answer_requests(client, number)

    def _answer_requests(self, client: socket.socket, number: int) -> None:
        try:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(buffer) < length:
                    buffer += client.recv(65536)
                request, buffer = head + b"\r\n\r\n" + buffer[:length], buffer[length:]
                if number < self._dead_below:
                    if self._dead_record:
                        self.requests.append(request)
                    continue
                self.requests.append(request)
                reply = self.answer(head)
                if reply:
                    client.sendall(reply)
                if b"Connection: close" in reply or self.close_after_answer:
                    return
        except OSError:
            return


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(
        answer: Answer, tls: ssl.SSLContext | None = None, close_after_answer: bool = False
    ) -> RawServer:
        servers.append(RawServer(answer, tls, close_after_answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, connect_timeout=1, read_timeout=0.5)


def test_posts_over_https_are_delivered_and_signed(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS (verified against the server's certificate) each post arrives, SigV4-signed."""
    server_tls = _trusted_server_tls(tmp_path, monkeypatch)
    server = serve(lambda head: OK, server_tls)
    report = Notifier(server.endpoint, workers=4, region="us-east-1").send_many(
        ["a=", "b=", "c="], '{"type":"pong"}'
    )
    assert report.delivered == 3
    assert all(b"Authorization: AWS4-HMAC-SHA256 Credential=" in r for r in server.requests)
    assert sorted(r.split(b" ")[1] for r in server.requests) == [
        b"/prod/@connections/a%3D",
        b"/prod/@connections/b%3D",
        b"/prod/@connections/c%3D",
    ]


def test_an_untrusted_certificate_is_refused(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server whose certificate does not verify gets no frame: the post fails, nothing raises."""
    server_tls, _ = _server_tls(tmp_path)
    server = serve(lambda head: OK, server_tls)
    assert (
        Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST).send("a=", "{}")
        is Delivery.FAILED
    )
    assert server.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["content-length", "chunked", "connection-close", "204-no-length", "body-to-close", "http-1.0"],
)
def test_every_response_framing_is_read_through(serve: Callable[..., RawServer], reply: bytes) -> None:
    """Every framing is read to its end, each post made once, and the next post is not confused."""
    server = serve(lambda head: reply)
    report = Notifier(server.endpoint, workers=2, region="us-east-1", retry=FAST).send_many(
        [f"c{n}=" for n in range(10)], "{}"
    )
    assert report.delivered == 10 and report.failed == []
    assert sorted(server.targets()) == sorted(f"c{n}=".encode() for n in range(10))


def test_keep_alive_reuses_connections(serve: Callable[..., RawServer]) -> None:
    """A hundred posts with four in flight open about four connections, not a hundred."""
    server = serve(lambda head: OK)
    Notifier(server.endpoint, workers=4, region="us-east-1").send_many([f"c{n}=" for n in range(100)], "{}")
    assert len(server.requests) == 100 and server.connections <= 8


def test_gone_throttled_and_failing_answers(serve: Callable[..., RawServer]) -> None:
    """410 is gone at once; 429 and 503 are retried until they succeed; 400 fails without retrying."""
    answers = {
        b"gone": [b"HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException\r\nContent-Length: 2\r\n\r\n{}"],
        b"busy": [b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n"] * 2 + [OK],
        b"flaky": [b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", OK],
        b"bad": [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"] * 3,
    }

    def answer(head: bytes) -> bytes:
        target = head.split(b" ")[1].rsplit(b"/", 1)[-1]
        return answers[target].pop(0)

    server = serve(answer)
    report = Notifier(server.endpoint, workers=4, region="us-east-1", retry=FAST).send_many(
        ["gone", "busy", "flaky", "bad"], "{}"
    )
    assert (report.delivered, report.gone, report.failed) == (2, ["gone"], ["bad"])
    assert len(answers[b"bad"]) == 2  # asked once: a 400 is not worth repeating


def test_a_hung_endpoint_is_bounded_in_time(serve: Callable[..., RawServer]) -> None:
    """A server that never answers costs at most attempts x read timeout, then the post fails."""
    server = serve(lambda head: b"")
    started = time.monotonic()
    outcome = Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST).send("a=", "{}")
    assert outcome is Delivery.FAILED
    assert time.monotonic() - started < FAST.attempts * (FAST.read_timeout + FAST.max_delay) + 2


def test_a_hung_endpoint_over_tls_is_bounded_in_time(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS too, a post that gets no answer is cut off after the read timeout, attempt by attempt."""
    server_tls = _trusted_server_tls(tmp_path, monkeypatch)
    server = serve(lambda head: b"", server_tls)
    started = time.monotonic()
    outcome = Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST).send("a=", "{}")
    elapsed = time.monotonic() - started
    assert outcome is Delivery.FAILED and len(server.requests) == FAST.attempts
    assert (
        FAST.attempts * FAST.read_timeout
        <= elapsed
        < FAST.attempts * (FAST.read_timeout + FAST.max_delay) + 2
    )


def test_each_post_gets_the_whole_read_timeout(serve: Callable[..., RawServer]) -> None:
    """A post on a kept-alive connection is timed from its own start, not from an earlier post's: the
    second post, which gets no answer the first time, is cut off a full read timeout after it was sent."""
    asked: list[bytes] = []

    def answer(head: bytes) -> bytes:
        asked.append(head.split(b" ")[1])
        return b"" if asked.count(asked[-1]) == 1 and b"slow" in asked[-1] else OK

    server = serve(answer)
    notifier = Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST)
    assert notifier.send("fast=", "{}") is Delivery.DELIVERED
    time.sleep(FAST.read_timeout * 0.6)
    started = time.monotonic()
    assert notifier.send("slow=", "{}") is Delivery.DELIVERED
    elapsed = time.monotonic() - started
    assert FAST.read_timeout <= elapsed < FAST.read_timeout + FAST.max_delay + 1.5
    assert server.targets() == [b"fast=", b"slow=", b"slow="] and server.connections == 2


def test_a_204_without_a_length_is_one_quick_delivery(serve: Callable[..., RawServer]) -> None:
    """A 204 has no body whatever its headers say: delivered at once, posted once, connection kept."""
    server = serve(lambda head: b"HTTP/1.1 204 No Content\r\n\r\n")
    notifier = Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST)
    started = time.monotonic()
    outcomes = [notifier.send(f"c{n}=", "{}") for n in range(3)]
    assert outcomes == [Delivery.DELIVERED] * 3
    assert time.monotonic() - started < FAST.read_timeout  # no wait for a close that never comes
    assert server.targets() == [b"c0=", b"c1=", b"c2="] and server.connections == 1


@pytest.mark.parametrize(
    ("reply", "connections"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 1),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 5),
    ],
    ids=["chunked-kept-alive", "connection-close-not-reused"],
)
def test_connections_are_kept_only_when_the_server_says_so(
    serve: Callable[..., RawServer], reply: bytes, connections: int
) -> None:
    """A chunked answer leaves the connection for the next post; ``Connection: close`` does not."""
    server = serve(lambda head: reply)
    notifier = Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST)
    assert [notifier.send(f"c{n}=", "{}") for n in range(5)] == [Delivery.DELIVERED] * 5
    assert len(server.requests) == 5 and server.connections == connections


def test_a_connection_closed_while_idle_costs_no_attempt(serve: Callable[..., RawServer]) -> None:
    """The server closes each connection after answering, unannounced: every post still gets through on
    its only attempt, on a new connection, and none is posted twice."""
    server = serve(lambda head: OK, close_after_answer=True)
    one_try = RetryPolicy(attempts=1, connect_timeout=1, read_timeout=1)
    notifier = Notifier(server.endpoint, workers=1, region="us-east-1", retry=one_try)
    assert [notifier.send(f"c{n}=", "{}") for n in range(5)] == [Delivery.DELIVERED] * 5
    assert server.targets() == [b"c0=", b"c1=", b"c2=", b"c3=", b"c4="]


DEAD_AFTER = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, connect_timeout=1, read_timeout=2)


@pytest.mark.parametrize("record", [False, True], ids=["requests-vanish", "server-hangs"])
def test_connections_from_an_earlier_invocation_are_not_reused(
    serve: Callable[..., RawServer], record: bool
) -> None:
    """After a freeze the kept-alive sockets may be dead without a word: the next invocation opens new
    ones, loses no time waiting on the old ones, and posts each frame once."""
    server = serve(lambda head: OK)
    notifier = Notifier(server.endpoint, workers=4, region="us-east-1", retry=DEAD_AFTER)
    assert notifier.send_many([f"first{n}=" for n in range(4)], "{}").delivered == 4
    server.kill_open_connections(record=record)
    begin_invocation()
    started = time.monotonic()
    report = notifier.send_many([f"next{n}=" for n in range(4)], "{}")
    assert report.delivered == 4
    assert time.monotonic() - started < DEAD_AFTER.read_timeout
    assert sorted(server.targets()) == sorted([f"first{n}=".encode() for n in range(4)]) + sorted(
        f"next{n}=".encode() for n in range(4)
    )


def test_connections_idle_too_long_are_not_reused(serve: Callable[..., RawServer]) -> None:
    """Within one invocation too, a connection idle longer than ``max_idle`` is replaced, not tried."""
    server = serve(lambda head: OK)
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=2, max_idle=0.2)
    notifier = Notifier(server.endpoint, workers=2, region="us-east-1", retry=policy)
    assert notifier.send_many(["a=", "b="], "{}").delivered == 2
    server.kill_open_connections(record=True)
    time.sleep(0.3)
    started = time.monotonic()
    assert notifier.send_many(["c=", "d="], "{}").delivered == 2
    assert time.monotonic() - started < policy.read_timeout
    assert sorted(server.targets()) == [b"a=", b"b=", b"c=", b"d="]


def test_a_silently_dead_pool_costs_one_timeout_per_lane(serve: Callable[..., RawServer]) -> None:
    """Four pooled sockets die unannounced within an invocation; two lanes each lose one read timeout on
    one of them, then post on new connections: not a second timeout on the next dead socket in the pool."""
    server = serve(lambda head: OK)
    assert (
        Notifier(server.endpoint, workers=4, region="us-east-1", retry=DEAD_AFTER)
        .send_many([f"first{n}=" for n in range(4)], "{}")
        .delivered
        == 4
    )
    server.kill_open_connections(record=False)
    started = time.monotonic()
    report = Notifier(server.endpoint, workers=2, region="us-east-1", retry=DEAD_AFTER).send_many(
        [f"next{n}=" for n in range(6)], "{}"
    )
    elapsed = time.monotonic() - started
    assert report.delivered == 6
    assert DEAD_AFTER.read_timeout <= elapsed < 2 * DEAD_AFTER.read_timeout
    assert sorted(server.targets()[4:]) == sorted(f"next{n}=".encode() for n in range(6))


def test_a_certificate_for_another_host_is_refused(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trusted certificate that names another host is refused too: host names are checked."""
    server_tls = _trusted_server_tls(tmp_path, monkeypatch, host="localhost")
    server = serve(lambda head: OK, server_tls)
    assert (
        Notifier(server.endpoint, workers=1, region="us-east-1", retry=FAST).send("a=", "{}")
        is Delivery.FAILED
    )
    assert server.requests == []


def test_each_handler_invocation_leaves_earlier_connections_alone(
    world: ChatWorld, serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route handlers start each invocation afresh: a ping after the kept-alive socket died
    unannounced is answered at once, on a new connection, and posted once."""
    server = serve(lambda head: OK)
    notifier = Notifier(server.endpoint, workers=2, region="us-east-1", retry=DEAD_AFTER)
    monkeypatch.setattr(world.service, "notifier", notifier)
    world.send("ping0001=", "alice", {"action": "ping"})
    server.kill_open_connections(record=True)
    started = time.monotonic()
    world.send("ping0001=", "alice", {"action": "ping"})
    assert time.monotonic() - started < DEAD_AFTER.read_timeout
    assert server.targets() == [b"ping0001=", b"ping0001="] and server.connections == 2


def test_a_fan_out_opens_one_connection_per_posts_per_connection_recipients(
    serve: Callable[..., RawServer],
) -> None:
    """200 recipients at 8 posts a connection open 25 connections, though 200 posts may be in flight."""
    server = serve(lambda head: OK)
    notifier = Notifier(server.endpoint, workers=200, region="us-east-1", posts_per_connection=8)
    report = notifier.send_many([f"c{n}=" for n in range(200)], "{}")
    assert report.delivered == 200 and len(server.requests) == 200 and server.connections == 25


@pytest.mark.parametrize(
    ("recipients", "workers", "per_connection", "lanes"),
    [
        (1, 200, 8, 1),
        (8, 200, 8, 1),
        (9, 200, 8, 2),
        (200, 200, 8, 25),
        (1000, 200, 8, 125),
        (5000, 200, 8, 200),
        (3, 200, 1, 3),
        (300, 200, 1, 200),
        (0, 200, 8, 1),
    ],
)
def test_lanes_for(recipients: int, workers: int, per_connection: int, lanes: int) -> None:
    """Lanes are recipients per connection rounded up, capped by the posts in flight, never none."""
    assert lanes_for(recipients, workers, per_connection) == lanes
