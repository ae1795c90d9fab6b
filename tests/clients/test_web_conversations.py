"""Conversations in the web client (protocol 1.1), in Chromium against the local stack: two users and a
second device of one of them; unread badges, "typing…", "Seen", and scrolling back with `history`."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.clients.browser import WAIT_MS
from tests.clients.peers import Peer
from tests.clients.test_web_client import connection_of
from tests.clients.web_pages import (
    by_id,
    conversation,
    expect_message,
    message,
    open_conversation,
    signed_in,
    type_line,
)

pytestmark = pytest.mark.browser


def badge(page: Page, partner: str | None):
    return conversation(page, partner).get_by_test_id("unread-badge")


def test_badges_clear_on_every_device_seen_and_typing(open_context, stack, new_username) -> None:
    """Bob's DM badges both of Alice's devices; reading on one clears both, Bob sees "Seen"; typing shows."""
    alice, bob = new_username("alice"), new_username("bob")
    alice_phone = signed_in(open_context(), stack, alice)
    alice_laptop = signed_in(open_context(), stack, alice)
    bob_page = signed_in(open_context(), stack, bob)

    type_line(bob_page, f"/msg {alice} are you free at noon?")
    type_line(bob_page, f"/msg {alice} or at one?")
    for page in (alice_phone, alice_laptop):
        expect(badge(page, bob)).to_have_text("2", timeout=WAIT_MS)
    # The newest conversation comes first.
    expect(alice_phone.get_by_test_id("conversation").first).to_have_attribute("data-with", bob)

    open_bob = alice_phone
    open_conversation(open_bob, bob)
    expect_message(open_bob, "or at one?", kind="private", label=f"from {bob}")
    for page in (alice_phone, alice_laptop):
        expect(badge(page, bob)).to_have_count(0, timeout=WAIT_MS)

    open_conversation(bob_page, alice)
    expect_message(bob_page, "or at one?", kind="private", label=f"to {alice}")
    # "Seen" under Bob's last message Alice read, and under that one only.
    expect(message(bob_page, "or at one?").get_by_test_id("seen")).to_be_visible(timeout=WAIT_MS)
    expect(message(bob_page, "are you free at noon?").get_by_test_id("seen")).to_be_hidden()

    by_id(alice_phone, "message-input").press_sequentially("noon works", delay=20)
    expect(by_id(bob_page, "typing")).to_have_text(f"{alice} is typing…", timeout=WAIT_MS)
    expect(by_id(bob_page, "typing")).to_have_text("", timeout=10_000)  # gone after about 5 s
    by_id(alice_phone, "message-input").press("Enter")
    expect_message(bob_page, "noon works", kind="private", label=f"from {alice}")
    # Bob reads it with the thread open: Alice's message gets its "Seen".
    expect(message(alice_phone, "noon works").get_by_test_id("seen")).to_be_visible(timeout=WAIT_MS)
    # The public thread is not typed in: nothing there says typing.
    open_conversation(alice_laptop, None)
    expect(by_id(alice_laptop, "typing")).to_have_text("")


def test_unread_counts_come_from_inbox_on_sign_in(open_context, stack, new_username, peer) -> None:
    """Messages sent while a user was away show as unread badges from `inbox` when they sign in."""
    carol, dave = new_username("carol"), new_username("dave")
    peer(carol).close()  # carol's account exists
    sender = peer(dave)
    for n in range(3):
        sender.send(
            {"action": "sendmessage", "to": carol, "text": f"while away {n}", "clientMsgId": f"away-{n}"}
        )
        sender.wait_for(lambda f, n=n: f.get("type") == "ack" and f.get("clientMsgId") == f"away-{n}")
    page = signed_in(open_context(), stack, carol)
    expect(badge(page, dave)).to_have_text("3", timeout=WAIT_MS)
    open_conversation(page, dave)
    expect(badge(page, dave)).to_have_count(0, timeout=WAIT_MS)
    sender.wait_for(lambda f: f.get("type") == "read" and f.get("user") == carol)


def send_all(sender: Peer, lines: list[dict]) -> None:
    """Send every frame, then wait for every ack (a burst within the sender's budget)."""
    for frame in lines:
        sender.send(frame)
    for frame in lines:
        sender.wait_for(
            lambda f, id=frame["clientMsgId"]: f.get("type") == "ack" and f.get("clientMsgId") == id
        )


def test_scrolling_up_loads_older_messages_keeps_the_place_and_stops_at_the_start(
    open_context, stack, new_username, peer
) -> None:
    """56 private messages older than the opening sync: the thread pages them in with `history`."""
    erin, frank = new_username("erin"), new_username("frank")
    sides = {erin: peer(erin), frank: peer(frank)}
    total = 56
    for who, other in ((erin, frank), (frank, erin)):
        send_all(
            sides[who],
            [
                {"action": "sendmessage", "to": other, "text": f"{who} old {n:02}", "clientMsgId": f"old-{n}"}
                for n in range(total // 2)
            ],
        )
    # Enough public traffic after them that the opening sync (the latest 100) holds none of them.
    for n in range(5):
        crowd = peer(new_username("crowd"))
        send_all(
            crowd,
            [{"action": "sendmessage", "text": f"crowd {n}.{k}", "clientMsgId": f"c{k}"} for k in range(22)],
        )

    page = signed_in(open_context(viewport={"width": 1000, "height": 700}), stack, erin)
    history_frames: list[dict] = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framesent",
            lambda payload: (
                history_frames.append(json.loads(payload)) if '"history"' in str(payload) else None
            ),
        ),
    )
    page.reload()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    open_conversation(page, frank)
    private = by_id(page, "message").filter(has_text=" old ")
    expect(private).to_have_count(50, timeout=WAIT_MS)  # the latest page
    first_shown = private.first.get_by_test_id("message-text").inner_text()

    by_id(page, "message-list").evaluate("list => { list.scrollTop = 0; }")
    expect(private).to_have_count(total, timeout=WAIT_MS)
    # The older ones went in above what was on screen: the place is kept, not jumped to the top.
    assert by_id(page, "message-list").evaluate("list => list.scrollTop") > 0
    expect(message(page, first_shown)).to_be_in_viewport()
    texts = private.get_by_test_id("message-text").all_inner_texts()
    assert len(set(texts)) == total

    # `more` was false: scrolling to the top again asks for nothing.
    asked = len(history_frames)
    by_id(page, "message-list").evaluate(
        "list => { list.scrollTop = 0; list.dispatchEvent(new Event('scroll')); }"
    )
    page.wait_for_timeout(1000)
    assert len(history_frames) == asked
    assert all(frame.get("with") in (frank, None) for frame in history_frames)


def test_a_batched_replay_frame_shows_each_message_once(open_context, stack, new_username, peer) -> None:
    """A `messages` frame (sync with batch: true) puts each of its messages in its thread, in order, once."""
    gina, hal = new_username("gina"), new_username("hal")
    page = signed_in(open_context(), stack, gina)
    sender = peer(hal)
    sender.send({"action": "sendmessage", "to": gina, "text": "a real one", "clientMsgId": "real-1"})
    ack = sender.wait_for(lambda f: f.get("type") == "ack")
    open_conversation(page, hal)
    expect_message(page, "a real one", kind="private", label=f"from {hal}")

    def batched(n: int) -> dict:
        # Ids of the server's form, just after the real one; the real cursor (the page keeps it).
        return {
            "id": f"{ack['id'][:-2]}Z{n}",
            "cursor": ack["cursor"],
            "from": hal,
            "to": gina,
            "text": f"batched {n}",
            "sentAt": "2026-12-01T12:00:00.000Z",
            "clientMsgId": None,
        }

    frame = json.dumps({"type": "messages", "messages": [batched(1), batched(2)]}).encode()
    management = stack.management_client()
    connection = connection_of(stack, gina)
    for _ in range(2):  # the second delivery repeats both: nothing new is shown
        management.post_to_connection(ConnectionId=connection, Data=frame)
    shown = by_id(page, "message").filter(has_text="batched")
    expect(shown).to_have_count(2, timeout=WAIT_MS)
    page.wait_for_timeout(500)
    assert shown.get_by_test_id("message-text").all_inner_texts() == ["batched 1", "batched 2"]


def test_an_own_message_in_a_history_page_before_its_ack_is_shown_once(
    open_context, stack, new_username, peer
) -> None:
    """A history page that holds a message of ours whose ack has not come yet shows it once, sent,
    not also as "sending…" (the ack is held back here until the page has the history frame)."""
    alice, bob = new_username("alice"), new_username("bob")
    peer(bob)
    context = open_context()
    context.route_web_socket(lambda url: "/local" in url, hold_acks_until_history_with(bob))
    page = signed_in(context, stack, alice)
    type_line(page, f"/msg {bob} the ack comes last")
    open_conversation(page, bob)
    expect_message(page, "the ack comes last", kind="private", label=f"to {bob}")


def hold_acks_until_history_with(partner: str):
    """A WebSocket route that passes every frame on, except acks: those wait until a history page
    of the conversation with ``partner`` has reached the page."""

    def route(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        held: list[str | bytes] = []
        released = False

        def from_server(data: str | bytes) -> None:
            nonlocal released
            frame = json.loads(data) if isinstance(data, str) else {}
            if frame.get("type") == "ack" and not released:
                held.append(data)
                return
            page_side.send(data)
            if frame.get("type") == "history" and frame.get("with") == partner:
                released = True
                for waiting in held:
                    page_side.send(waiting)

        server_side.on_message(from_server)

    return route
