"""The gateway's handshake and routing rules over real sockets, with stand-in handlers.

The real authorizer and ``$connect`` never answer malformed policies or refuse with a status, so
these run one gateway in this process with the handlers of ``local_stack_stubs.py``.
"""

from __future__ import annotations

import asyncio
import json
import socket as sockets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import local_stack_stubs
import pytest
from aiohttp import web
from botocore.config import Config
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from infra import constants
from local_stack import events
from local_stack.console import Console
from local_stack.gateway import Limits, WebSocketGateway
from local_stack.lambdas import CALLS_PER_CONNECTION, Function, LambdaRuntime
from local_stack.management import Faults, ManagementApi
from local_stack.site import StaticSite

STUBS = "local_stack_stubs"


class StubGateway:
    def __init__(self, web_root: Path) -> None:
        self.event_log = events.EventLog(keep_events=True)
        self.runtime = LambdaRuntime(region="us-east-1", account_id="123456789012", stack_name="Test")
        routes = {route.key: Function(route.function_id, f"{STUBS}.fine") for route in constants.ROUTES}
        routes["$connect"] = Function("Connect", f"{STUBS}.connect")
        routes["$default"] = Function("Default", f"{STUBS}.default")
        self.gateway = WebSocketGateway(
            api=events.Api("abcdef1234", "local", "us-east-1", "123456789012"),
            runtime=self.runtime,
            routes=routes,
            authorizer=Function("Authorizer", f"{STUBS}.authorize", timeout_s=10),
            site=StaticSite(web_root, lambda: {"websocketUrl": "ws://example"}),
            console=Console(enabled=False),
            limits=Limits(idle_timeout_s=0.5),
            event_log=self.event_log,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        port = self._run(self.gateway.start("127.0.0.1", 0))
        self.http_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/local"

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    @property
    def recorded(self) -> list[tuple[str, dict[str, Any]]]:
        return [(entry["kind"], entry["event"]) for entry in self.event_log.recorded()]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.recorded]

    def stop(self) -> None:
        self._run(self.gateway.stop())
        self.runtime.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<!doctype html><title>chat</title>")
    (root / "app.js").write_text("console.log('hi')")
    (root / "style.css").write_text("body {}")
    (root.parent / "secret.txt").write_text("not for the web")
    return root


@pytest.fixture(scope="module")
def stub(web_root: Path) -> Iterator[StubGateway]:
    gateway = StubGateway(web_root)
    yield gateway
    gateway.stop()


def handshake_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10)
    return refused.value.response.status_code


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("unauthorized", 401),
        ("deny", 403),
        ("other-resource", 403),
        ("crash", 500),
        ("malformed", 500),
        ("nested-context", 500),
    ],
)
def test_authorizer_answers_map_to_handshake_statuses(stub: StubGateway, token: str, status: int) -> None:
    """Unauthorized is 401, a policy not allowing $connect 403, a crash or malformed answer 500."""
    assert handshake_status(f"{stub.ws_url}?token={token}") == status
    assert stub.recorded[-1][0] == "authorizer"  # $connect was never called


def test_missing_or_empty_token_is_401_without_the_authorizer(stub: StubGateway) -> None:
    """The identity source is checked first, as API Gateway does."""
    before = len(stub.recorded)
    assert handshake_status(stub.ws_url) == 401
    assert handshake_status(f"{stub.ws_url}?token=") == 401
    assert handshake_status(f"{stub.ws_url}?other=1") == 401
    assert len(stub.recorded) == before


def test_wildcard_policy_allows(stub: StubGateway) -> None:
    """A policy for ``<api>/<stage>/*`` covers ``$connect``."""
    with connect(f"{stub.ws_url}?token=wildcard") as socket:
        socket.send("hello")


@pytest.mark.parametrize(("mode", "status"), [("refuse", 403), ("crash", 500), ("nothing", 500)])
def test_connect_refusal_refuses_the_handshake(stub: StubGateway, mode: str, status: int) -> None:
    """A non-2xx $connect answer (or a crash) fails the handshake with that status."""
    assert handshake_status(f"{stub.ws_url}?token=alice&connect={mode}") == status
    assert stub.kinds()[-1] == "$connect"


def test_authorizer_context_and_principal_reach_every_event(stub: StubGateway) -> None:
    """The Allow answer's context plus principalId is requestContext.authorizer from $connect on."""
    with connect(f"{stub.ws_url}?token=carol") as socket:
        socket.send('{"action":"who"}')
    _wait(lambda: stub.kinds()[-1] == "$disconnect")
    mine = [
        e for _, e in stub.recorded if e["requestContext"].get("authorizer", {}).get("username") == "carol"
    ]
    assert [e["requestContext"]["routeKey"] for e in mine] == ["$connect", "who", "$disconnect"]
    for event in mine:
        assert event["requestContext"]["authorizer"]["principalId"] == "someone"
        # The authorizer saw a Lambda context with time left (get_remaining_time_in_millis).
        assert 0 < event["requestContext"]["authorizer"]["remaining"] <= 10_000


def test_integration_failure_sends_api_gateways_error_frame(stub: StubGateway) -> None:
    """A route that raises gets the client API Gateway's own frame, and the socket stays open."""
    with connect(f"{stub.ws_url}?token=dave") as socket:
        socket.send("boom")
        frame = json.loads(socket.recv(timeout=10))
        assert frame["message"] == "Internal server error"
        assert set(frame) == {"message", "connectionId", "requestId"}
        socket.send("still open")


def test_one_connections_flood_does_not_delay_another_connections_frame(stub: StubGateway) -> None:
    """With 40 slow frames of one connection invoked (8 of them running), another's starts at once,
    not 41st, and the flood's calls still all run."""
    local_stack_stubs.STARTED.clear()
    before = len(_bodies(stub, "note:slow"))
    with (
        connect(f"{stub.ws_url}?token=flooder") as flooder,
        connect(f"{stub.ws_url}?token=victim") as victim,
    ):
        for _ in range(40):
            flooder.send("note:slow")
        _wait(lambda: len(_bodies(stub, "note:slow")) - before == 40)  # all 40 invoked
        victim.send("note:victim")
        _wait(lambda: "note:victim" in local_stack_stubs.STARTED)
        # It ran beside the flood's running calls (a second each), not after the 32 queued ones.
        assert local_stack_stubs.STARTED.index("note:victim") <= CALLS_PER_CONNECTION + 1
        _wait(lambda: local_stack_stubs.STARTED.count("note:slow") == 40, timeout=30)


def _bodies(stub: StubGateway, body: str) -> list[dict[str, Any]]:
    return [event for kind, event in stub.recorded if kind == "$default" and event.get("body") == body]


def test_binary_frame_closes_with_1003(stub: StubGateway) -> None:
    """API Gateway takes no binary frames: it closes the socket with 1003."""
    with connect(f"{stub.ws_url}?token=erin") as socket:
        socket.send(b"\x00\x01")
        with pytest.raises(ConnectionClosedError) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_idle_connection_is_closed_with_1001_then_disconnect(stub: StubGateway) -> None:
    """After the idle timeout (0.5 s here) the socket closes with 1001 and $disconnect runs."""
    with connect(f"{stub.ws_url}?token=frank") as socket, pytest.raises(ConnectionClosedOK) as closed:
        socket.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "Going away")
    _wait(lambda: stub.kinds()[-1] == "$disconnect")
    context = stub.recorded[-1][1]["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")


def test_wrong_stage_is_refused(stub: StubGateway) -> None:
    """Only the stage's path takes WebSocket handshakes."""
    assert handshake_status(stub.ws_url.replace("/local", "/prod") + "?token=x") == 403


def http_get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ],
)
def test_static_files_with_content_types(stub: StubGateway, path: str, content_type: str) -> None:
    """Files under the web root are served with their content type."""
    status, served_type, _ = http_get(stub.http_url + path)
    assert status == 200 and served_type.startswith(content_type)


@pytest.mark.parametrize(
    "path",
    ["/missing.js", "/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%5csecret.txt"],
)
def test_unknown_files_and_path_traversal_are_404(stub: StubGateway, path: str) -> None:
    """Nothing outside the web root is ever served."""
    # urllib normalises "..", so the request line is written by hand.
    host, port = stub.http_url.removeprefix("http://").split(":")
    with sockets.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:80]
    assert b"not for the web" not in answer


def _wait(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@dataclass
class Management:
    url: str
    api: ManagementApi


@pytest.fixture(scope="module")
def management(stub: StubGateway) -> Iterator[Management]:
    """The management API for the stub gateway, on its own port."""
    api = ManagementApi(stub.gateway, seed=7)
    app = web.Application()
    api.add_routes(app, "local")
    runner = web.AppRunner(app, access_log=None)
    stub._run(runner.setup())
    stub._run(web.TCPSite(runner, "127.0.0.1", 0).start())
    yield Management(f"http://127.0.0.1:{runner.addresses[0][1]}/local", api)
    stub._run(runner.cleanup())


def management_client(url: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_injected_throttling_is_limit_exceeded(stub: StubGateway, management: Management) -> None:
    """With a throttle rate of 1 every call is 429 LimitExceededException; 0 turns it off."""
    client = management_client(management.url)
    management.api.faults = Faults(throttle_rate=1.0)
    try:
        with pytest.raises(client.exceptions.LimitExceededException):
            client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    finally:
        management.api.faults = Faults()
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")


def test_injected_latency_delays_every_call(stub: StubGateway, management: Management) -> None:
    """Injected latency is added to each call."""
    client = management_client(management.url)
    management.api.faults = Faults(latency_s=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(client.exceptions.GoneException):
            client.get_connection(ConnectionId="AAAAAAAAAAAAAAA=")
        assert time.monotonic() - started >= 0.3
    finally:
        management.api.faults = Faults()


def test_binary_data_is_posted_as_a_binary_frame(stub: StubGateway, management: Management) -> None:
    """UTF-8 data arrives as a text frame, anything else as a binary one."""
    client = management_client(management.url)
    with connect(f"{stub.ws_url}?token=gina") as socket:
        connection_id = stub.recorded[-1][1]["requestContext"]["connectionId"]
        client.post_to_connection(ConnectionId=connection_id, Data="héllo".encode())
        client.post_to_connection(ConnectionId=connection_id, Data=b"\xff\xfe")
        assert socket.recv(timeout=5) == "héllo"
        assert socket.recv(timeout=5) == b"\xff\xfe"
