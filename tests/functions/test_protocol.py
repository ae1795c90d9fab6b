"""chat.protocol's rules, directly: what a valid frame is, and the error each wrong one gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat import protocol
from chat.cursor import Cursor, IdGenerator
from chat.errors import InvalidJson, InvalidMessage, RejectedFrame, TextTooLong, UnknownAction

CURSOR = Cursor.for_live(IdGenerator().new_id(1_780_000_000_000), 30_000)


def rejection(parse: Any, body: Any) -> RejectedFrame:
    with pytest.raises(RejectedFrame) as caught:
        parse(body)
    return caught.value


@pytest.mark.parametrize(
    ("body", "limit"),
    [({}, 100), ({"limit": None}, 100), ({"limit": 1}, 1), ({"limit": 500}, 500), ({"limit": 20}, 20)],
)
def test_sync_limit_defaults_to_100_and_takes_1_to_500(body: dict[str, Any], limit: int) -> None:
    """No limit or a null one means 100; 1 and 500 are the ends of the range."""
    assert protocol.parse_sync(body).limit == limit


@pytest.mark.parametrize("limit", [0, 501, -1, True, False, 2.5, "10", [10]])
def test_sync_limit_outside_the_range_or_not_a_whole_number_is_invalid(limit: object) -> None:
    """0, 501, booleans, floats and strings are invalid_message."""
    assert isinstance(rejection(protocol.parse_sync, {"limit": limit}), InvalidMessage)


def test_sync_since_takes_an_issued_cursor_and_refuses_anything_else() -> None:
    """A cursor the server issued is decoded; a made-up string or a number is invalid_message."""
    assert protocol.parse_sync({"since": CURSOR.encode()}).since == CURSOR
    assert protocol.parse_sync({"since": None}).since is None
    for since in ["c1.garbage.0", 12, {"after": "x"}]:
        assert isinstance(rejection(protocol.parse_sync, {"since": since}), InvalidMessage)


def test_send_trims_the_text_and_keeps_it_public_without_to() -> None:
    """Leading and trailing whitespace goes; no `to` means a public message."""
    assert protocol.parse_send({"text": "  hi there \n"}) == protocol.SendRequest("hi there", None, None)


def test_send_to_is_normalised_to_lower_case() -> None:
    """`to` compares case-insensitively: Bob is bob."""
    assert protocol.parse_send({"text": "hi", "to": "Bob"}).to == "bob"


def test_msg_command_means_to_and_text() -> None:
    """`/msg bob hello there` is a private message to bob with the text `hello there`."""
    request = protocol.parse_send({"text": "/msg Bob  hello there", "clientMsgId": "a-1"})
    assert request == protocol.SendRequest("hello there", "bob", "a-1")


@pytest.mark.parametrize("text", ["/msg", "/msg bob", "/msg bob   ", "/msg  "])
def test_msg_command_without_user_or_text_is_invalid(text: str) -> None:
    """/msg needs both a user and a text."""
    assert isinstance(rejection(protocol.parse_send, {"text": text}), InvalidMessage)


def test_msg_command_and_to_together_are_invalid() -> None:
    """The recipient is given once: `to` or /msg, not both."""
    assert isinstance(rejection(protocol.parse_send, {"text": "/msg bob hi", "to": "bob"}), InvalidMessage)


def test_text_of_exactly_the_limit_is_accepted_and_one_more_is_too_long() -> None:
    """4,000 characters (after trimming) pass; 4,001 are text_too_long, with the clientMsgId."""
    assert protocol.parse_send({"text": " " + "x" * protocol.TEXT_LIMIT + " "}).text == "x" * 4000
    error = rejection(protocol.parse_send, {"text": "x" * 4001, "clientMsgId": "m1"})
    assert isinstance(error, TextTooLong)
    assert error.client_msg_id == "m1"


@pytest.mark.parametrize("text", ["", "   ", None, 5, ["hi"], "a\x00b", "bell\x07", "\ud800"])
def test_empty_missing_or_unprintable_text_is_invalid(text: object) -> None:
    """Blank text, a non-string and control characters or lone surrogates are invalid_message."""
    assert isinstance(rejection(protocol.parse_send, {"text": text}), InvalidMessage)


@pytest.mark.parametrize(("text", "blank"), [("\x80\x9f", True), ("\x85", True), ("a\x80", False)])
def test_control_characters_alone_show_nothing(text: str, blank: bool) -> None:
    """A text of only control characters (C1 ones pass the forbidden-character check) is blank and
    refused; beside a visible character they are text."""
    assert protocol.is_blank(text) is blank
    if blank:
        assert isinstance(rejection(protocol.parse_send, {"text": text}), InvalidMessage)
    else:
        assert protocol.parse_send({"text": text}).text == text


def test_tabs_and_newlines_are_text() -> None:
    """Whitespace inside a message is kept: only other control characters are refused."""
    assert protocol.parse_send({"text": "a\tb\nc"}).text == "a\tb\nc"


@pytest.mark.parametrize("to", ["ab", "x" * 33, "bad name", 7, "é" * 4])
def test_to_that_cannot_be_a_username_is_invalid(to: object) -> None:
    """A `to` that is not 3 to 32 of a-z 0-9 _ . - is invalid_message."""
    assert isinstance(rejection(protocol.parse_send, {"text": "hi", "to": to}), InvalidMessage)


@pytest.mark.parametrize(
    ("client_msg_id", "valid"),
    [("a", True), ("A_b-9" * 12 + "abcd", True), ("x" * 65, False), ("", False), ("a b", False), (5, False)],
)
def test_client_msg_id_is_1_to_64_safe_characters(client_msg_id: object, valid: bool) -> None:
    """clientMsgId is 1 to 64 of A-Z a-z 0-9 _ -; anything else is invalid_message."""
    body = {"text": "hi", "clientMsgId": client_msg_id}
    if valid:
        assert protocol.parse_send(body).client_msg_id == client_msg_id
    else:
        assert isinstance(rejection(protocol.parse_send, body), InvalidMessage)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{", InvalidJson),
        ("NaN", InvalidJson),
        ("[1]", UnknownAction),
        ('"x"', UnknownAction),
        ("", InvalidJson),
        (None, InvalidJson),
    ],
)
def test_frames_that_are_not_a_json_object_are_refused_by_kind(
    raw: str | None, error: type[RejectedFrame]
) -> None:
    """Not JSON (NaN included) is invalid_json; JSON that is not an object is unknown_action."""
    assert isinstance(rejection(protocol.parse_json_object, raw), error)


@pytest.mark.parametrize("raw", ['{"action":"dance"}', '{"action":""}', '{"text":"hi"}', '{"action":5}'])
def test_default_route_refuses_every_frame_as_unknown_action(raw: str) -> None:
    """Whatever JSON object reaches $default is unknown_action."""
    assert isinstance(rejection(protocol.reject_unroutable, raw), UnknownAction)


def test_bare_ping_is_only_the_word_ping() -> None:
    """`ping` (with surrounding whitespace) is a bare ping; anything else is not."""
    assert protocol.is_bare_ping(" ping\n")
    assert not protocol.is_bare_ping("pings")
    assert not protocol.is_bare_ping(None)


def test_client_msg_id_of_never_raises() -> None:
    """Error frames echo a valid clientMsgId, and None for anything else, without raising."""
    assert protocol.client_msg_id_of('{"clientMsgId":"ok-1"}') == "ok-1"
    for raw in ['{"clientMsgId":"not ok"}', "[]", "{", None, '{"clientMsgId":1}']:
        assert protocol.client_msg_id_of(raw) is None


def test_frames_are_compact_utf8_json() -> None:
    """encode writes no spaces and keeps non-ASCII text as it is."""
    assert protocol.encode({"type": "pong", "text": "olá"}) == '{"type":"pong","text":"olá"}'


def test_only_ping_is_a_bare_ping_not_any_word_sorting_before_it() -> None:
    """Words that are not `ping` are refused, whatever their order against it."""
    assert not any(protocol.is_bare_ping(word) for word in ["hello", "a", "", "pin", "pong", "zzz"])


def test_a_msg_command_with_a_user_and_no_text_says_how_to_write_it() -> None:
    """`/msg bob` is invalid_message with a hint at the form, not only "text is empty"."""
    assert "/msg <user> <text>" in rejection(protocol.parse_send, {"text": "/msg bob"}).message


def test_an_unknown_action_is_quoted_up_to_64_characters() -> None:
    """The error names the action, cut at 64 characters so a huge one cannot bloat the frame."""
    message = rejection(protocol.reject_unroutable, '{"action":"' + "a" * 64 + "b" * 10 + '"}').message
    assert repr("a" * 64) in message
    message = rejection(protocol.reject_unroutable, '{"action":"' + "a" * 63 + "b" + '"}').message
    assert repr("a" * 63 + "b") in message


def test_parsed_requests_are_values() -> None:
    """A parsed request cannot be changed on its way through the service."""
    requests = [
        protocol.parse_send({"text": "hi"}),
        protocol.parse_sync({}),
        protocol.parse_history({}),
        protocol.parse_read({"upTo": IdGenerator().new_id(1_780_000_000_000)}),
        protocol.parse_typing({"to": "bob"}),
        protocol.Conversation(None, None, 0, None, None),
    ]
    for request in requests:
        with pytest.raises(AttributeError):
            request.limit = 1  # type: ignore[union-attr]


# ---- batched replay (version 1.1) ----------------------------------------------------------------


def test_sync_batch_is_off_unless_true() -> None:
    """Without `batch` a sync replays as in version 1; `true` and `false` are taken as given."""
    assert protocol.parse_sync({}).batch is False
    assert protocol.parse_sync({"batch": True}).batch is True
    assert protocol.parse_sync({"batch": False}).batch is False


@pytest.mark.parametrize("batch", [None, 1, 0, "true", [], {}])
def test_sync_batch_that_is_not_a_boolean_is_invalid(batch: object) -> None:
    """null, numbers, strings and containers as `batch` are invalid_message."""
    assert isinstance(rejection(protocol.parse_sync, {"batch": batch}), InvalidMessage)


def message_objects(texts: list[str]) -> list[dict[str, Any]]:
    ids = IdGenerator()
    return [
        protocol.message_fields(
            message_id=(message_id := ids.new_id(1_780_000_000_000 + n)),
            cursor=Cursor.for_live(message_id, 30_000),
            sender="alice",
            to=None if n % 2 else "bob",
            text=text,
            sent_at="2026-11-27T09:30:00.123Z",
            client_msg_id=None if n % 3 else f"c-{n}",
        )
        for n, text in enumerate(texts)
    ]


def test_a_message_object_is_a_message_frame_without_its_type() -> None:
    """A message frame is its message object with `type` first: the fields of both are the same."""
    [item] = message_objects(["hi"])
    frame = protocol.message_frame(item)
    assert frame == {"type": "message", **item}
    assert list(frame) == ["type", "id", "cursor", "from", "to", "text", "sentAt", "clientMsgId"]


def test_packed_frames_are_the_encoded_messages_frames_in_order() -> None:
    """Each packed frame is exactly encode(messages_frame(part)), and the parts in turn are the input."""
    items = message_objects([f"message {n} " + "é" * (n * 37 % 400) for n in range(300)])
    packed = protocol.pack_messages(items)
    assert len(packed) > 1
    again: list[dict[str, Any]] = []
    for text, count in packed:
        part = json.loads(text)["messages"]
        assert text == protocol.encode(protocol.messages_frame(part))
        assert len(part) == count
        again += part
    assert again == items


@pytest.mark.parametrize("max_bytes", [300, 301, 302, 333, 700, 1024, 4096, protocol.MESSAGES_FRAME_BYTES])
def test_each_packed_frame_holds_as_many_messages_as_fit_in_its_bytes(max_bytes: int) -> None:
    """No frame is over the limit in UTF-8 bytes, and none could have taken the next message too."""
    items = message_objects([f"{n} " + "ü€😀"[n % 3] * (n * 53 % 90) + '"\n' * (n % 4) for n in range(120)])
    packed = protocol.pack_messages(items, max_bytes=max_bytes)
    start = 0
    for text, count in packed:
        assert len(text.encode()) <= max_bytes or count == 1
        if start + count < len(items):
            with_next = protocol.encode(protocol.messages_frame(items[start : start + count + 1]))
            assert len(with_next.encode()) > max_bytes
        start += count
    assert start == len(items)


@pytest.mark.parametrize("first", ["a", "ab", "abc", "abcd"])
def test_a_frame_exactly_at_the_limit_is_kept_whole(first: str) -> None:
    """Messages that fill the limit to the byte share one frame; one byte less splits them (whatever
    the first message's length)."""
    items = message_objects([first, "b", "c"])
    exact = len(protocol.encode(protocol.messages_frame(items)).encode())
    assert [count for _, count in protocol.pack_messages(items, max_bytes=exact)] == [3]
    assert [count for _, count in protocol.pack_messages(items, max_bytes=exact - 1)] == [2, 1]


def test_a_message_larger_than_the_limit_still_goes_alone() -> None:
    """Every frame holds at least one message, even one that alone is past the limit."""
    items = message_objects(["x" * 500, "y", "z" * 500])
    assert [count for _, count in protocol.pack_messages(items, max_bytes=100)] == [1, 1, 1]
    assert protocol.pack_messages([], max_bytes=100) == []


def test_the_largest_message_fits_a_32_kb_frame() -> None:
    """4,000 characters of the widest JSON (escaped quotes, or 4-byte emoji) fit one 32 KB frame."""
    assert protocol.MESSAGES_FRAME_BYTES == 32 * 1024
    for char in ('"', "😀", "\n"):
        items = message_objects([char * protocol.TEXT_LIMIT] * 3)
        packed = protocol.pack_messages(items)
        assert all(len(text.encode()) <= protocol.MESSAGES_FRAME_BYTES for text, _ in packed)


def test_replay_frames_without_batch_are_one_message_frame_each() -> None:
    """A version 1 sync posts one `message` frame per message, each the message object with its type."""
    items = message_objects(["one", "two"])
    frames = protocol.replay_frames(items, batch=False)
    assert [json.loads(text) for text, _ in frames] == [{"type": "message", **item} for item in items]
    assert [count for _, count in frames] == [1, 1]
    assert protocol.replay_frames(items, batch=True) == protocol.pack_messages(items)


def test_messages_is_a_frame_type_of_the_protocol() -> None:
    """The batched replay's frame is a version 1.1 frame type, apart from version 1's."""
    assert protocol.BATCHED_FRAME_TYPES == ("messages",)
    assert "messages" not in protocol.FRAME_TYPES  # a version 1 client never gets one
    assert protocol.messages_frame([]) == {"type": "messages", "messages": []}
