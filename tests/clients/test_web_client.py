"""The web client in a real headless Chromium against the running local stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from tests.clients.browser import WAIT_MS
from tests.clients.peers import PASSWORD
from tests.clients.web_pages import (
    by_id,
    expect_message,
    message,
    open_conversation,
    signed_in,
    type_line,
)

pytestmark = pytest.mark.browser


def test_two_users_exchange_public_and_private_messages_and_a_second_session_sees_its_own(
    open_context, stack, new_username
) -> None:
    """Alice and Bob chat publicly and privately; Alice's second browser sees her private messages too."""
    alice, bob = new_username("alice"), new_username("bob")
    alice_page = signed_in(open_context(), stack, alice)
    bob_page = signed_in(open_context(), stack, bob)
    alice_again = signed_in(open_context(), stack, alice)

    expect(by_id(bob_page, "online-user").filter(has_text=alice)).to_have_count(1, timeout=WAIT_MS)
    expect(by_id(alice_page, "online-user").filter(has_text=bob)).to_have_count(1, timeout=WAIT_MS)

    type_line(alice_page, "hello everyone")
    for page in (alice_page, bob_page, alice_again):
        expect_message(page, "hello everyone", kind="public")

    # `/msg` from the public thread: the message is in the private conversation, on every side.
    type_line(bob_page, f"/msg {alice} hi alice, just you")
    for page in (alice_page, alice_again, bob_page):
        expect(message(page, "hi alice, just you")).to_have_count(0)
    open_conversation(bob_page, alice)
    expect_message(bob_page, "hi alice, just you", kind="private", label=f"to {alice}")
    for page in (alice_page, alice_again):
        open_conversation(page, bob)
        expect_message(page, "hi alice, just you", kind="private", label=f"from {bob}")

    type_line(alice_page, f"/msg {bob} a secret for bob")
    expect_message(alice_page, "a secret for bob", kind="private", label=f"to {bob}")
    expect_message(bob_page, "a secret for bob", kind="private", label=f"from {alice}")
    # A copy of what Alice sent reaches her other sessions.
    expect_message(alice_again, "a secret for bob", kind="private", label=f"to {bob}")


def test_a_tab_that_was_offline_shows_what_it_missed(open_context, stack, new_username) -> None:
    """Offline, the tab drops its socket; back online it reconnects and syncs, each message once."""
    alice, bob = new_username("alice"), new_username("bob")
    alice_context = open_context()
    alice_page = signed_in(alice_context, stack, alice)
    bob_page = signed_in(open_context(), stack, bob)
    type_line(bob_page, "before the outage")
    expect_message(alice_page, "before the outage", kind="public")

    alice_context.set_offline(True)
    expect(by_id(alice_page, "connection-state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    type_line(bob_page, "said while alice was away")
    expect_message(bob_page, "said while alice was away", kind="public")
    type_line(bob_page, f"/msg {alice} whispered while you were away")
    open_conversation(bob_page, alice)
    expect_message(bob_page, "whispered while you were away", kind="private", label=f"to {alice}")
    expect(message(alice_page, "said while alice was away")).to_have_count(0)

    alice_context.set_offline(False)
    expect(by_id(alice_page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    expect_message(alice_page, "said while alice was away", kind="public")
    expect_message(alice_page, "before the outage", kind="public")
    open_conversation(alice_page, bob)
    expect_message(alice_page, "whispered while you were away", kind="private", label=f"from {bob}")


def test_messages_typed_offline_are_sent_once_back_online(open_context, stack, new_username) -> None:
    """A message typed with no connection waits, shown as sending, and goes out on reconnect."""
    alice, bob = new_username("alice"), new_username("bob")
    alice_context = open_context()
    alice_page = signed_in(alice_context, stack, alice)
    bob_page = signed_in(open_context(), stack, bob)

    alice_context.set_offline(True)
    expect(by_id(alice_page, "connection-state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    type_line(alice_page, "typed on the train")
    expect(message(alice_page, "typed on the train")).to_have_attribute("data-pending", "true")

    alice_context.set_offline(False)
    expect_message(alice_page, "typed on the train", kind="public")
    expect_message(bob_page, "typed on the train", kind="public")


def test_a_burst_of_public_and_private_lines_arrives_in_the_order_typed(
    open_context, stack, new_username
) -> None:
    """Lines typed faster than they are acknowledged reach the other user in the order typed."""
    alice, bob = new_username("alice"), new_username("bob")
    alice_page = signed_in(open_context(), stack, alice)
    bob_page = signed_in(open_context(), stack, bob)
    lines = [f"/msg {bob} burst {n}" if n % 2 else f"burst {n}" for n in range(6)]
    for line in lines:
        type_line(alice_page, line)  # no waiting in between
    # Each conversation shows its share, in the order typed; the two threads are read in turn.
    for partner, numbers in ((None, range(0, len(lines), 2)), (alice, range(1, len(lines), 2))):
        open_conversation(bob_page, partner)
        burst = by_id(bob_page, "message").filter(has_text="burst")
        expect(burst).to_have_count(len(numbers), timeout=WAIT_MS)
        assert burst.get_by_test_id("message-text").all_inner_texts() == [f"burst {n}" for n in numbers]


def test_a_reload_keeps_the_session_and_shows_no_duplicates(open_context, stack, new_username) -> None:
    """The tab's session and messages survive a reload; the resumed sync repeats nothing on screen."""
    alice = new_username("alice")
    page = signed_in(open_context(), stack, alice)
    type_line(page, "before the reload")
    expect_message(page, "before the reload", kind="public")
    page.reload()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    type_line(page, "after the reload")
    expect_message(page, "after the reload", kind="public")
    expect_message(page, "before the reload", kind="public")


def test_errors_and_who_are_shown(open_context, stack, new_username) -> None:
    """An error frame is shown in words (no code); /who lists who is online."""
    alice = new_username("alice")
    page = signed_in(open_context(), stack, alice)
    type_line(page, "/msg nobody-here-at-all hello?")
    words = "There is nobody called nobody-here-at-all here. Check the name and try again."
    expect(by_id(page, "error").filter(has_text=words)).to_have_count(1, timeout=WAIT_MS)
    expect(by_id(page, "error")).not_to_contain_text("unknown_user")
    open_conversation(page, "nobody-here-at-all")
    expect(message(page, "hello?")).to_have_attribute("data-pending", "false", timeout=WAIT_MS)
    type_line(page, "/who")
    expect(by_id(page, "notice").filter(has_text="Online: ")).to_contain_text(alice, timeout=WAIT_MS)


def test_a_wrong_password_is_refused_on_the_sign_in_form(open_context, stack, new_username) -> None:
    """A taken username with another password is refused in words (no error name) on the form."""
    alice = new_username("alice")
    signed_in(open_context(), stack, alice)
    page = open_context().new_page()
    page.goto(stack.http_url)
    by_id(page, "username").fill(alice)
    by_id(page, "password").fill("another-password-1")
    by_id(page, "sign-in-button").click()
    expect(by_id(page, "sign-in-error")).to_be_visible(timeout=WAIT_MS)
    expect(by_id(page, "sign-in-error")).to_have_text(f"Wrong password for {alice}, or the name is taken.")
    expect(by_id(page, "chat-view")).to_be_hidden()


def test_a_refused_token_is_refreshed_and_the_tab_reconnects(open_context, stack, new_username) -> None:
    """A handshake refused for its token leads to REFRESH_TOKEN_AUTH and a connection with the new one."""
    page = signed_in(open_context(), stack, new_username("alice"))
    page.evaluate(
        """() => {
          const session = JSON.parse(sessionStorage.getItem("chat.session"));
          session.tokens.accessToken = "not-a-token";
          sessionStorage.setItem("chat.session", JSON.stringify(session));
        }"""
    )
    page.reload()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    token = page.evaluate('() => JSON.parse(sessionStorage.getItem("chat.session")).tokens.accessToken')
    assert token != "not-a-token"


def test_a_page_whose_configuration_does_not_answer_yet_waits_for_it(
    open_context, stack, new_username
) -> None:
    """While /config.json fails (a stack still starting) the page says so in words and tries again."""
    context = open_context()
    failures = {"left": 2}

    def flaky(route: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            route.abort()
        else:
            route.continue_()

    context.route("**/config.json", flaky)
    page = context.new_page()
    page.goto(stack.http_url)
    expect(by_id(page, "sign-in-error")).to_have_text("The chat server does not answer yet; trying again…")
    expect(by_id(page, "sign-in-error")).to_be_hidden(timeout=WAIT_MS)
    assert failures["left"] == 0
    by_id(page, "username").fill(new_username("late"))
    by_id(page, "password").fill(PASSWORD)
    by_id(page, "sign-in-button").click()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)


def connection_of(stack: Any, username: str) -> str:
    """The id of ``username``'s one open connection, from the Connections table behind the stack."""
    dynamodb = stack.aws_client("dynamodb")
    items = dynamodb.scan(
        TableName=stack.table_names["Connections"],
        FilterExpression="username = :u",
        ExpressionAttributeValues={":u": {"S": username}},
    )["Items"]
    assert len(items) == 1, items
    return str(items[0]["connectionId"]["S"])


def test_a_stale_offline_after_online_is_ignored(open_context, stack, new_username) -> None:
    """Presence frames delivered out of order: an offline older than the online shown changes nothing."""
    alice, ghost, marker = new_username("alice"), new_username("ghost"), new_username("marker")
    page = signed_in(open_context(), stack, alice)
    management = stack.management_client()
    connection_id = connection_of(stack, alice)

    def deliver(user: str, online: bool, at: str) -> None:
        frame = {"type": "presence", "user": user, "online": online, "at": at}
        management.post_to_connection(ConnectionId=connection_id, Data=json.dumps(frame).encode())

    def shown(user: str) -> Locator:
        return by_id(page, "online-user").filter(has_text=user)

    # The answer to the page's opening `who` replaces the whole list: wait for it (it lists alice).
    expect(shown(alice)).to_have_count(1, timeout=WAIT_MS)
    deliver(ghost, True, "2026-11-27T09:30:02.000Z")
    expect(shown(ghost)).to_have_count(1, timeout=WAIT_MS)
    deliver(ghost, False, "2026-11-27T09:30:01.000Z")  # stale: from a worker that ran late or twice
    # Frames on one socket arrive in order: once the marker shows, the stale offline was handled.
    deliver(marker, True, "2026-11-27T09:30:00.000Z")
    expect(shown(marker)).to_have_count(1, timeout=WAIT_MS)
    expect(shown(ghost)).to_have_count(1)
    deliver(ghost, False, "2026-11-27T09:30:03.000Z")
    expect(shown(ghost)).to_have_count(0, timeout=WAIT_MS)
