"""The command-line client's protocol rules, without sockets."""

from __future__ import annotations

import random
import re

import pytest

from clients.cli.protocol import (
    Backoff,
    ChatState,
    Help,
    Invalid,
    Quit,
    Say,
    SeenIds,
    Who,
    new_client_msg_id,
    parse_input,
)


def message(id_: str, cursor: str, sender: str = "bob", to: str | None = None, **extra: object) -> dict:
    return {
        "type": "message",
        "id": id_,
        "cursor": cursor,
        "from": sender,
        "to": to,
        "text": f"text of {id_}",
        "sentAt": "2026-01-01T12:00:00.000Z",
        "clientMsgId": None,
        **extra,
    }


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello there", Say("hello there")),
        ("  /msg Bob  hi   you ", Say("hi   you", to="bob")),
        ("/who", Who()),
        ("/QUIT", Quit()),
        ("/help", Help()),
        ("   ", None),
    ],
)
def test_parse_input(line: str, command: object) -> None:
    """Typed lines become public, private, /who, /quit and /help commands."""
    assert parse_input(line) == command


@pytest.mark.parametrize("line", ["/msg", "/msg bob", "/msg b hi", "/nope x"])
def test_parse_input_rejects_malformed_commands(line: str) -> None:
    """A /msg without a valid user or text, or an unknown command, is not sent."""
    assert isinstance(parse_input(line), Invalid)


def test_client_msg_ids_are_protocol_conformant_and_distinct() -> None:
    """clientMsgIds are 1-64 of A-Za-z0-9_- and never repeat."""
    ids = {new_client_msg_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value) for value in ids)


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    """Delays double up to the cap, are never zero, and start over after a reset."""
    backoff = Backoff(base=1, cap=8, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_seen_ids_forget_the_oldest_beyond_capacity() -> None:
    """Deduplication memory is bounded."""
    seen = SeenIds(capacity=2)
    assert seen.add("a") and seen.add("b") and not seen.add("b")
    seen.add("c")
    assert "a" not in seen and "c" in seen


def test_opening_frames_resume_from_the_cursor_and_resend_the_outbox() -> None:
    """On (re)connect: who, sync since the cursor, then every unacked message with its clientMsgId."""
    state = ChatState("alice", cursor="c1")
    pending = state.compose("hi", to="bob")
    frames = state.opening_frames()
    assert frames == [
        {"action": "who"},
        {"action": "sync", "since": "c1"},
        {"action": "sendmessage", "text": "hi", "to": "bob", "clientMsgId": pending.client_msg_id},
    ]


def test_first_connection_asks_for_history_and_at_least_one_cursor() -> None:
    """Without a cursor, sync asks for the latest messages: at least one, whose cursor resumes later."""
    assert {"action": "sync", "limit": 20} in ChatState("alice", history=20).opening_frames()
    frames = ChatState("alice", history=0).opening_frames()
    assert frames == [{"action": "who"}, {"action": "sync", "limit": 1}]


def test_duplicates_are_dropped_by_id() -> None:
    """A message replayed by sync after being seen live is shown once."""
    state = ChatState("alice")
    assert state.receive(message("m1", "c1")).events
    assert not state.receive(message("m1", "c1")).events
    assert state.cursor == "c1"


def test_sync_loops_while_more_and_takes_the_synced_cursor() -> None:
    """`more: true` asks again from the returned cursor; live cursors wait for the replay to end."""
    state = ChatState("alice", cursor="c0")
    state.opening_frames()
    state.receive(message("live", "c9"))
    assert state.cursor == "c0"
    assert state.receive({"type": "synced", "cursor": "c5", "more": True, "complete": True}).replies == [
        {"action": "sync", "since": "c5"}
    ]
    reaction = state.receive({"type": "synced", "cursor": "c9", "more": False, "complete": True})
    assert reaction.replies == [] and not state.syncing and state.cursor == "c9"


def test_ack_of_a_private_message_shows_our_copy_once() -> None:
    """The sender's connection gets no echo of a private message: the ack makes our copy."""
    state = ChatState("alice")
    sent = state.compose("psst", to="bob")
    ack = {"type": "ack", "id": "m7", "cursor": "c7", "clientMsgId": sent.client_msg_id, "duplicate": False}
    copy, acked = state.receive(ack).events
    assert (copy["from"], copy["to"], copy["text"], copy["id"]) == ("alice", "bob", "psst", "m7")
    assert acked is ack and not state.outbox
    assert not state.receive(message("m7", "c7", sender="alice", to="bob")).events


def test_own_public_echo_before_the_ack_empties_the_outbox() -> None:
    """A public message echoed back is stored: it is not resent, and its ack adds no second copy."""
    state = ChatState("alice")
    sent = state.compose("hello all")
    echo = message("m1", "c1", sender="alice", clientMsgId=sent.client_msg_id)
    assert state.receive(echo).events == [echo]
    assert not state.outbox
    ack = {"type": "ack", "id": "m1", "cursor": "c1", "clientMsgId": sent.client_msg_id, "duplicate": False}
    assert state.receive(ack).events == [ack]


def test_an_error_frame_drops_the_refused_message_from_the_outbox() -> None:
    """A refused message is not resent on the next connection."""
    state = ChatState("alice")
    sent = state.compose("hi", to="nobody")
    error = {"type": "error", "code": "unknown_user", "message": "no", "clientMsgId": sent.client_msg_id}
    assert state.receive(error).events == [error]
    assert not state.outbox


def presence(user: str, online: bool, at: str | None) -> dict:
    frame: dict = {"type": "presence", "user": user, "online": online}
    if at is not None:
        frame["at"] = at
    return frame


def test_a_presence_frame_older_than_the_last_applied_is_ignored() -> None:
    """A stale offline arriving after a newer online (a worker run twice) is dropped; newer ones apply."""
    state = ChatState("alice")
    online = presence("bob", True, "2026-11-27T09:30:02.000Z")
    stale_offline = presence("bob", False, "2026-11-27T09:30:01.000Z")
    assert state.receive(online).events == [online]
    assert state.receive(stale_offline).events == []
    later_offline = presence("bob", False, "2026-11-27T09:30:03.500Z")
    assert state.receive(later_offline).events == [later_offline]
    assert state.receive(online).events == []  # the same online again, now older than the offline


def test_presence_is_ordered_per_user_and_frames_without_at_always_apply() -> None:
    """Times are compared per user; a version-1 server's frame (no `at`) is applied as it comes."""
    state = ChatState("alice")
    assert state.receive(presence("bob", True, "2026-11-27T09:30:05.000Z")).events
    carol = presence("carol", True, "2026-11-27T09:30:01.000Z")
    assert state.receive(carol).events == [carol]
    untimed = presence("bob", False, None)
    assert state.receive(untimed).events == [untimed]
