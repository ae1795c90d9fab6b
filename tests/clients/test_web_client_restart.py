"""The web page open across a restart of the local stack: it reconnects on its own, and when its
account is gone (a stack started afresh) it says so in words, offers to sign up again, and loses
nothing typed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from clients.cli.config import load_from_url
from local_stack.testing import RunningStack, running_stack
from tests.clients.browser import WAIT_MS
from tests.clients.peers import PASSWORD, Peer
from tests.clients.restarts import RAW_ERROR, RECONNECT_MS, start_keeping_accounts, started_afresh
from tests.clients.test_web_client import by_id, expect_message, message, signed_in, type_line

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def restartable() -> Iterator[RunningStack]:
    with running_stack() as stack:
        yield stack


def test_a_page_told_its_account_is_gone_signs_up_again_and_sends_what_was_typed(
    open_context, restartable, new_username
) -> None:
    """After a fresh start the page returns to the form with plain words and the name filled in; the
    message typed while the stack was down is sent once signed up again."""
    alice = new_username("alice")
    page = signed_in(open_context(), restartable, alice)
    restartable.stop()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    type_line(page, "typed while the server was down")
    expect(message(page, "typed while the server was down")).to_have_attribute("data-pending", "true")

    started_afresh(restartable)
    expect(by_id(page, "sign-in-view")).to_be_visible(timeout=RECONNECT_MS)
    notice = by_id(page, "sign-in-error").inner_text()
    assert f"the account {alice} no longer exists" in notice
    assert "unsent message is kept" in notice
    assert not RAW_ERROR.search(notice), notice
    expect(by_id(page, "username")).to_have_value(alice)

    bob = Peer(load_from_url(restartable.http_url), new_username("bob"))
    try:
        by_id(page, "password").fill(PASSWORD)
        by_id(page, "sign-in-button").click()
        expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
        expect_message(page, "typed while the server was down", kind="public")
        assert bob.wait_for_message("typed while the server was down")["from"] == alice
    finally:
        bob.close()


def test_a_page_open_across_a_restart_reconnects_and_carries_on(
    open_context, restartable, new_username
) -> None:
    """With its accounts kept, a restarted stack gets the page back online by itself, and it syncs."""
    alice = new_username("alice")
    page: Page = signed_in(open_context(), restartable, alice)
    type_line(page, "before the restart")
    expect_message(page, "before the restart", kind="public")
    restartable.stop()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    type_line(page, "typed during the restart")
    if not start_keeping_accounts(restartable):
        pytest.skip("this stack starts with new accounts on every start")
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=RECONNECT_MS)
    expect_message(page, "typed during the restart", kind="public")
    expect_message(page, "before the restart", kind="public")
    expect(by_id(page, "chat-view")).to_be_visible()
