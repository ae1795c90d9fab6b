"""What the browser tests do on the web client's page: sign in, type, find messages, switch threads."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.clients.browser import WAIT_MS
from tests.clients.peers import PASSWORD


def by_id(page: Page, test_id: str) -> Locator:
    return page.get_by_test_id(test_id)


def signed_in(context: BrowserContext, stack: Any, username: str) -> Page:
    """A page of the web client, signed in (or up) as ``username`` and connected."""
    page = context.new_page()
    page.goto(stack.http_url)
    sign_in(page, username)
    expect(by_id(page, "current-user")).to_have_text(username, timeout=WAIT_MS)
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    return page


def sign_in(page: Page, username: str) -> None:
    """Fill in the sign-in form on an open page and send it."""
    by_id(page, "username").fill(username)
    by_id(page, "password").fill(PASSWORD)
    by_id(page, "sign-in-button").click()


def type_line(page: Page, line: str) -> None:
    by_id(page, "message-input").fill(line)
    by_id(page, "message-input").press("Enter")


def message(page: Page, text: str) -> Locator:
    return by_id(page, "message").filter(has=page.get_by_text(text, exact=True))


def expect_message(page: Page, text: str, *, kind: str, label: str | None = None) -> None:
    """Exactly one message with ``text``, acknowledged, of ``kind``, with ``label`` when private."""
    found = message(page, text)
    expect(found).to_have_count(1, timeout=WAIT_MS)
    expect(found).to_have_attribute("data-pending", "false", timeout=WAIT_MS)
    expect(found).to_have_attribute("data-kind", kind)
    if label is not None:
        expect(found.get_by_test_id("message-label")).to_have_text(label)


def conversation(page: Page, partner: str | None) -> Locator:
    """The conversation list's entry for ``partner`` (None: everyone)."""
    return page.locator(f'[data-testid="conversation"][data-with="{partner or ""}"]')


def open_conversation(page: Page, partner: str | None) -> None:
    """Picks ``partner``'s conversation (None: everyone) and waits for its thread."""
    if (
        by_id(page, "chat-view").get_attribute("data-screen") == "thread"
        and by_id(page, "back-button").is_visible()
    ):
        by_id(page, "back-button").click()
    conversation(page, partner).click()
    expect(by_id(page, "thread-title")).to_have_text(partner or "Everyone")
