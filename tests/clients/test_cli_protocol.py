"""The command-line client's protocol rules, without sockets."""

from __future__ import annotations

import random
import re

import pytest

from clients.cli.protocol import (
    Backoff,
    ChatState,
    Help,
    History,
    Invalid,
    Pager,
    Quit,
    ReadMarks,
    Say,
    SeenIds,
    Throttle,
    Who,
    new_client_msg_id,
    parse_input,
    typing_recipient,
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


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("/history", History()),
        ("/history Bob", History("bob")),
        ("/HISTORY  bob ", History("bob")),
    ],
)
def test_parse_history(line: str, command: object) -> None:
    """/history pages the public conversation; /history USER the DM with that user."""
    assert parse_input(line) == command


def test_parse_history_rejects_a_malformed_user() -> None:
    """/history with something that is not a username is not sent."""
    assert parse_input("/history b") == Invalid("usage: /history [USER]")


def refused(code: str, client_msg_id: str | None = None) -> dict:
    return {"type": "error", "code": code, "message": "try again", "clientMsgId": client_msg_id}


@pytest.mark.parametrize("code", ["rate_limited", "internal_error"])
def test_a_refused_sync_is_asked_again_after_a_growing_delay(code: str) -> None:
    """A sync answered rate_limited or internal_error is asked again from the same cursor, later each time."""
    state = ChatState("alice", cursor="c1")
    state.opening_frames()
    delays = []
    for _ in range(4):
        reaction = state.receive(refused(code))
        assert reaction.events[0]["type"] == "sync-retry" and reaction.events[0]["code"] == code
        assert reaction.retry_sync_in == reaction.events[0]["retryIn"]
        delays.append(reaction.retry_sync_in)
        assert state.sync_retry() == {"action": "sync", "since": "c1"}
    assert delays[0] <= 1 and delays[-1] >= 4  # 1, 2, 4, 8 seconds with jitter
    state.receive({"type": "synced", "cursor": "c2", "more": False, "complete": True})
    assert state.sync_retry() is None  # answered meanwhile: nothing to retry
    assert state.receive(refused(code)).events[0]["type"] == "error"  # not syncing: shown as is


def test_a_refused_first_sync_asks_again_for_the_recent_history() -> None:
    """Without a cursor, the retry is the same request for the latest messages."""
    state = ChatState("alice", history=20, batch=True)
    first = state.opening_frames()[1]
    assert state.receive(refused("rate_limited")).retry_sync_in is not None
    assert state.sync_retry() == first == {"action": "sync", "limit": 20, "batch": True}


def test_errors_that_are_not_the_syncs_are_shown() -> None:
    """A refused send (it has a clientMsgId) or a permanent error during the replay is no sync refusal."""
    state = ChatState("alice", cursor="c1")
    state.opening_frames()
    sent = state.compose("hi")
    for error in (refused("rate_limited", sent.client_msg_id), refused("unknown_action")):
        reaction = state.receive(error)
        assert reaction.events == [error] and reaction.retry_sync_in is None


def test_a_messages_frame_is_each_of_its_messages_once() -> None:
    """Batched replay: every message of a `messages` frame becomes a message event, duplicates dropped."""
    state = ChatState("alice", cursor="c0", batch=True)
    assert state.opening_frames()[1] == {"action": "sync", "since": "c0", "batch": True}
    state.receive(message("m1", "c1"))
    batch = [{k: v for k, v in message(i, f"c{i[1]}").items() if k != "type"} for i in ("m1", "m2", "m3")]
    events = state.receive({"type": "messages", "messages": batch}).events
    assert [(e["type"], e["id"]) for e in events] == [("message", "m2"), ("message", "m3")]
    state.receive({"type": "synced", "cursor": "c3", "more": False, "complete": True})
    assert state.cursor == "c3"


def test_history_pages_back_from_the_oldest_message_shown() -> None:
    """/history asks for messages before the oldest one shown of that conversation, page after page."""
    pager = Pager("alice")
    assert pager.request(None) == {"action": "history", "with": None, "limit": 20}
    pager.note_shown(message("01B", "c2"))
    pager.note_shown(message("01C", "c3", to="alice"))
    pager.note_shown(message("01A", "c1", sender="alice", to="bob"))
    assert pager.request(None)["before"] == "01B"
    assert pager.request("bob")["before"] == "01A"
    pager.note_page({"type": "history", "with": "bob", "messages": [message("019", "c0", to="alice")]})
    assert pager.request("bob") == {"action": "history", "with": "bob", "limit": 20, "before": "019"}


def test_a_history_page_is_shown_whole_and_its_messages_not_again() -> None:
    """A page's messages are shown even if seen before; a later replay of one of them is dropped."""
    state = ChatState("alice")
    state.receive(message("01B", "c2"))
    page = {"type": "history", "with": None, "messages": [message("01A", "c1"), message("01B", "c2")]}
    assert [m["id"] for m in state.receive({**page, "more": False}).events[0]["messages"]] == ["01A", "01B"]
    assert not state.receive(message("01A", "c1")).events


def test_inbox_is_asked_for_on_the_first_connection_only() -> None:
    """The unread counts are shown once per run, not on every reconnect."""
    state = ChatState("alice", inbox=True)
    assert {"action": "inbox"} in state.opening_frames()
    assert {"action": "inbox"} not in state.opening_frames()


def test_read_marks_report_the_newest_shown_once_per_conversation() -> None:
    """One `read` per conversation with the newest id shown; nothing again until something newer shows."""
    marks = ReadMarks("alice")
    for shown in (
        message("01A", "c1"),
        message("01C", "c3"),
        message("01B", "c2"),
        message("01D", "c4", sender="bob", to="alice"),
        message("01E", "c5", sender="alice", to="carol"),
    ):
        marks.note_shown(shown)
    assert marks.due() == [
        {"action": "read", "with": None, "upTo": "01C"},
        {"action": "read", "with": "bob", "upTo": "01D"},
        {"action": "read", "with": "carol", "upTo": "01E"},
    ]
    assert marks.due() == []
    marks.note_recorded("bob", "01F")  # read up to there on another device
    marks.note_shown(message("01F", "c6", sender="bob", to="alice"))
    marks.note_shown(message("01G", "c7"))
    assert marks.due() == [{"action": "read", "with": None, "upTo": "01G"}]


def test_throttle_allows_one_per_key_per_interval() -> None:
    """`typing` goes out at most every 3 s per recipient; "is typing" lines print at most every 5 s."""
    throttle = Throttle(3.0)
    assert throttle.allows("bob", 0.0) and not throttle.allows("bob", 2.9)
    assert throttle.allows("carol", 1.0) and throttle.allows("bob", 3.0)


@pytest.mark.parametrize(
    ("line", "recipient"),
    [("/msg bob h", "bob"), ("/msg bob", None), ("/msg bob ", None), ("hello", None), ("/who", None)],
)
def test_typing_is_for_a_private_message_with_text(line: str, recipient: str | None) -> None:
    """Only a private message being typed tells its recipient; public lines and commands tell nobody."""
    assert typing_recipient(line) == recipient
