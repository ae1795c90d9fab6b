"""One local stack for all client tests, fresh usernames, plain-WebSocket peers, and Chromium."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from clients.cli.config import ChatConfig, load_from_url
from tests.clients.browser import CHROMIUM, CHROMIUM_ARGS
from tests.clients.peers import Peer


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from local_stack.testing import running_stack

    with running_stack() as running:
        yield running


@pytest.fixture(scope="session")
def chat_config(stack: Any) -> ChatConfig:
    # Read the way every client reads it: from the stack's /config.json.
    return load_from_url(stack.http_url)


@pytest.fixture
def new_username() -> Callable[[str], str]:
    """Fresh usernames, so tests sharing one stack never see each other's users."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def peer(chat_config: ChatConfig) -> Iterator[Callable[[str], Peer]]:
    """Open plain-WebSocket users; all closed at the end of the test."""
    peers: list[Peer] = []

    def open_peer(username: str) -> Peer:
        peers.append(Peer(chat_config, username))
        return peers[-1]

    yield open_peer
    for each in peers:
        each.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API owns an event loop while it runs, and the other test
    # modules run their own with asyncio.run.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (separate cookies and storage, like separate browsers); closed after the test."""
    contexts: list[BrowserContext] = []

    def open_one(**options: Any) -> BrowserContext:
        contexts.append(browser.new_context(**options))
        return contexts[-1]

    yield open_one
    for context in contexts:
        context.close()
