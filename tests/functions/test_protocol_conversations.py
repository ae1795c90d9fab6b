"""The pure parts of version 1.1's conversation actions: parsing, blank text, fitting frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat import protocol
from chat.cursor import IdGenerator
from chat.errors import InvalidMessage

AN_ID = IdGenerator().new_id(1_764_000_000_000)


def _size(frame: dict[str, Any]) -> int:
    return len(protocol.encode(frame).encode())


def _message(n: int, text: str) -> dict[str, Any]:
    return {
        "id": f"{n:026d}",
        "cursor": "c",
        "from": "a",
        "to": None,
        "text": text,
        "sentAt": "t",
        "clientMsgId": None,
    }


def test_history_defaults_and_fields() -> None:
    """No fields: public, the latest, 50; `with` is lower-cased; null means absent."""
    assert protocol.parse_history({}) == protocol.HistoryRequest(None, None, 50)
    assert protocol.parse_history({"with": "Bob", "before": AN_ID, "limit": 100}) == protocol.HistoryRequest(
        "bob", AN_ID, 100
    )
    assert protocol.parse_history({"with": None, "before": None, "limit": None}).limit == 50


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": True},
        {"limit": 1.5},
        {"before": "c1." + AN_ID + ".abc"},
        {"before": AN_ID.lower()},
        {"before": "8" + AN_ID[1:]},
        {"before": AN_ID[:-1] + "U"},
        {"with": ""},
        {"with": ["bob"]},
    ],
)
def test_history_refuses_what_the_protocol_refuses(body: dict[str, Any]) -> None:
    """Every malformed field of `history` is `invalid_message`."""
    with pytest.raises(InvalidMessage):
        protocol.parse_history(body)


def test_read_and_typing_need_their_fields() -> None:
    """`read` needs an id-shaped `upTo`; `typing` a `to`."""
    assert protocol.parse_read({"upTo": AN_ID}) == protocol.ReadRequest(None, AN_ID)
    assert protocol.parse_typing({"to": "BOB"}) == protocol.TypingRequest("bob")
    for bad in ({}, {"upTo": None}, {"upTo": 5}, {"upTo": "x"}):
        with pytest.raises(InvalidMessage):
            protocol.parse_read(bad)
    for bad_typing in ({}, {"to": None}, {"to": "no spaces"}):
        with pytest.raises(InvalidMessage):
            protocol.parse_typing(bad_typing)


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        ("\u200b\u200c\u200d", True),
        ("\u2060\ufeff\u00ad", True),
        ("\u202a\u202e\u2066\u2069 \t\n", True),
        ("\u3164\u115f", True),
        ("a\u200b", False),
        ("\u200bx\u200b", False),
        ("\u0660", False),
        ("🙂", False),
    ],
)
def test_blank_is_what_a_reader_sees_as_nothing(text: str, blank: bool) -> None:
    """Whitespace, Cf characters and fillers are blank; one visible character is not."""
    assert protocol.is_blank(text) is blank


def test_a_visible_text_with_invisible_characters_is_kept_as_sent() -> None:
    """Zero-width joiners inside an emoji sequence are text: stored as sent."""
    family = "👩\u200d👩\u200d👧"
    assert protocol.parse_send({"text": family}).text == family


def test_history_fits_the_newest_messages_into_128_kb() -> None:
    """Of 60 messages of 4,000 three-byte characters, the newest that fit in 128 KB, oldest first, and
    `more`; all of them when they fit."""
    newest_first = [_message(60 - n, "€" * 4000) for n in range(60)]
    frame = protocol.fit_history("bob", newest_first, more=False)
    assert _size(frame) <= protocol.MAX_MESSAGE_BYTES
    kept = len(frame["messages"])
    assert 5 < kept < 60 and frame["more"] is True
    assert frame["messages"] == list(reversed(newest_first[:kept]))
    one_more = protocol.history_frame("bob", [newest_first[kept], *frame["messages"]], more=True)
    assert _size(one_more) > protocol.MAX_MESSAGE_BYTES
    small = [_message(3 - n, "hi") for n in range(3)]
    assert protocol.fit_history(None, small, more=False) == {
        "type": "history",
        "with": None,
        "messages": list(reversed(small)),
        "more": False,
    }


def test_history_counts_escaped_characters_as_sent() -> None:
    """Quotes and newlines are escaped on the wire (two bytes each): the size is the encoded one."""
    newest_first = [_message(40 - n, '"\n' * 2000) for n in range(40)]
    frame = protocol.fit_history(None, newest_first, more=False)
    assert _size(frame) <= protocol.MAX_MESSAGE_BYTES
    assert len(json.dumps(frame["messages"][0])) > 8000


def test_inbox_frame_orders_caps_and_keeps_public() -> None:
    """Newest last message first, conversations without one at the end, public always there, at
    most 100 rows; rows that would pass 128 KB are left out oldest first."""
    public = protocol.Conversation(None, None, 0, None, None)
    rows = [protocol.Conversation(f"u{n:03d}", _message(n, "x"), 1, None, None) for n in range(150)]
    frame = protocol.inbox_frame([public, *rows])
    partners = [c["with"] for c in frame["conversations"]]
    assert len(partners) == 100 and partners[-1] is None
    assert partners[:-1] == [f"u{n:03d}" for n in range(149, 50, -1)]
    big = [protocol.Conversation(f"u{n:03d}", _message(n, "€" * 4000), 1, None, None) for n in range(50)]
    trimmed = protocol.inbox_frame([*big, public])
    assert _size(trimmed) <= protocol.MAX_MESSAGE_BYTES
    kept = [c["with"] for c in trimmed["conversations"]]
    assert None in kept and kept[0] == "u049" and len(kept) < 51


def history_of_exactly(limit: int, *, more: bool) -> list[dict[str, Any]]:
    """Four messages, newest first, whose history frame (``more`` as given) is ``limit`` bytes."""
    newest_first = [_message(4 - n, "x" * 30_000) for n in range(4)]
    short = limit - _size(protocol.history_frame("bob", newest_first[::-1], more=more))
    newest_first[-1] = _message(1, "x" * (30_000 + short))
    return newest_first


def test_the_message_limit_is_api_gateways_128_kb() -> None:
    """A history or inbox frame is one WebSocket message, which API Gateway caps at 128 KB."""
    assert protocol.MAX_MESSAGE_BYTES == 128 * 1024


def test_history_limit_takes_1_to_100() -> None:
    """1 and 100 are the ends of a history page's range."""
    assert [protocol.parse_history({"limit": n}).limit for n in (1, 2, 100)] == [1, 2, 100]


@pytest.mark.parametrize("more", [True, False])
def test_a_history_frame_of_exactly_128_kb_is_sent_whole(more: bool) -> None:
    """Messages that make the frame 128 KB to the byte all go; one byte more leaves the oldest out."""
    limit = protocol.MAX_MESSAGE_BYTES
    newest_first = history_of_exactly(limit, more=more)
    frame = protocol.fit_history("bob", newest_first, more=more)
    assert frame["messages"] == newest_first[::-1] and frame["more"] is more
    assert _size(frame) == limit
    newest_first[0] = {**newest_first[0], "text": newest_first[0]["text"] + "x"}
    frame = protocol.fit_history("bob", newest_first, more=more)
    assert frame["messages"] == newest_first[:3][::-1] and frame["more"] is True


@pytest.mark.parametrize("over", [0, 1])
def test_a_history_frame_saying_more_false_counts_that_false(over: int) -> None:
    """Messages filling 128 KB (or a byte more) with `"more":true` are a byte further over it with
    `"more":false`: the oldest is left out (and `more` turns true), so the frame never passes the
    limit."""
    newest_first = history_of_exactly(protocol.MAX_MESSAGE_BYTES + over, more=True)
    frame = protocol.fit_history("bob", newest_first, more=False)
    assert _size(frame) <= protocol.MAX_MESSAGE_BYTES
    assert frame["messages"] == newest_first[:3][::-1] and frame["more"] is True


def test_a_history_frame_that_leaves_older_ones_out_fills_128_kb_to_the_byte() -> None:
    """A frame that leaves older messages out says `"more":true` whatever the caller passed:
    messages filling 128 KB with that are all sent."""
    newest_first = [*history_of_exactly(protocol.MAX_MESSAGE_BYTES, more=True), _message(0, "older")]
    frame = protocol.fit_history("bob", newest_first, more=False)
    assert frame["messages"] == newest_first[:4][::-1] and frame["more"] is True
    assert _size(frame) == protocol.MAX_MESSAGE_BYTES


def inbox_of_exactly(limit: int, *, public: bool = True) -> list[protocol.Conversation]:
    """Four private conversations (and the public one) whose inbox frame is ``limit`` bytes."""
    rows = [protocol.Conversation(f"user{n}", _message(n, "x" * 30_000), 1, None, None) for n in range(1, 5)]
    if public:
        rows.insert(0, protocol.Conversation(None, _message(0, "public"), 2, None, None))
    short = limit - _size(protocol.inbox_frame(rows))
    oldest = rows.index(next(row for row in rows if row.partner == "user1"))
    rows[oldest] = protocol.Conversation("user1", _message(1, "x" * (30_000 + short)), 1, None, None)
    return rows


def test_an_inbox_frame_of_exactly_128_kb_is_sent_whole() -> None:
    """Rows that make the inbox 128 KB to the byte all go; one byte more leaves the oldest private
    one out, and the public one stays."""
    conversations = inbox_of_exactly(protocol.MAX_MESSAGE_BYTES)
    frame = protocol.inbox_frame(conversations)
    assert _size(frame) == protocol.MAX_MESSAGE_BYTES
    assert [row["with"] for row in frame["conversations"]] == ["user4", "user3", "user2", "user1", None]
    public = conversations[0]
    conversations[0] = protocol.Conversation(None, _message(0, "public!"), 2, None, None)
    frame = protocol.inbox_frame(conversations)
    assert [row["with"] for row in frame["conversations"]] == ["user4", "user3", "user2", None]
    assert frame["conversations"][-1] == conversations[0].as_json() != public.as_json()


def test_an_inbox_without_the_public_row_is_exact_too() -> None:
    """With no public row, private rows that make the inbox 128 KB to the byte all go; one byte more
    leaves the oldest out."""
    conversations = inbox_of_exactly(protocol.MAX_MESSAGE_BYTES, public=False)
    assert _size(protocol.inbox_frame(conversations)) == protocol.MAX_MESSAGE_BYTES
    newest = conversations[-1]
    assert newest.last is not None
    conversations[-1] = protocol.Conversation("user4", _message(4, newest.last["text"] + "x"), 1, None, None)
    frame = protocol.inbox_frame(conversations)
    assert [row["with"] for row in frame["conversations"]] == ["user4", "user3", "user2"]


def test_history_stops_at_the_first_message_that_does_not_fit() -> None:
    """A history page is contiguous: after a message too large for what is left, no older one is
    sent (the client pages on from the oldest it got, so a skipped one would never come)."""
    newest_first = [_message(3, "new"), _message(2, "x" * protocol.MAX_MESSAGE_BYTES), _message(1, "old")]
    frame = protocol.fit_history(None, newest_first, more=False)
    assert frame["messages"] == newest_first[:1] and frame["more"] is True


def test_inbox_leaves_out_every_row_older_than_one_that_does_not_fit() -> None:
    """Rows are left out oldest first: after a row too large for what is left, no older one is kept;
    and the public conversation is listed once, whatever the input holds."""
    public = protocol.Conversation(None, None, 0, None, None)
    rows = [
        protocol.Conversation("new", _message(3, "new"), 1, None, None),
        protocol.Conversation("huge", _message(2, "x" * protocol.MAX_MESSAGE_BYTES), 1, None, None),
        protocol.Conversation("old", _message(1, "old"), 1, None, None),
    ]
    frame = protocol.inbox_frame([public, *rows, public])
    assert [row["with"] for row in frame["conversations"]] == ["new", None]
