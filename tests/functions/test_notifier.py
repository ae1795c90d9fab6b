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

import pytest
from chat import http1
from chat.notifier import Delivery, Notifier, RetryPolicy, begin_invocation
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Answer = Callable[[bytes], bytes]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
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


class RawServer:
    """A socket server whose every answer is chosen by the test; it records the requests it read."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}/prod"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with raw:
            try:
                client = self._tls.wrap_socket(raw, server_side=True) if self._tls else raw
            except OSError:
                return
            with client:
                self._answer_requests(client)

    def _answer_requests(self, client: socket.socket) -> None:
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
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                reply = self.answer(head)
                if reply:
                    client.sendall(reply)
                if b"Connection: close" in reply:
                    return
        except OSError:
            return


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, connect_timeout=1, read_timeout=0.5)


def test_posts_over_https_are_delivered_and_signed(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS (verified against the server's certificate) each post arrives, SigV4-signed."""
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setattr(http1, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
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
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
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
    ],
    ids=["content-length", "chunked", "connection-close"],
)
def test_every_response_framing_is_read_through(serve: Callable[..., RawServer], reply: bytes) -> None:
    """Sized, chunked and closing responses are all read to their end, so the next post is not confused."""
    server = serve(lambda head: reply)
    report = Notifier(server.endpoint, workers=2, region="us-east-1", retry=FAST).send_many(
        [f"c{n}=" for n in range(10)], "{}"
    )
    assert report.delivered == 10 and report.failed == []


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
