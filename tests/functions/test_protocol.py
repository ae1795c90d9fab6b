"""chat.protocol's rules, directly: what a valid frame is, and the error each wrong one gets."""

from __future__ import annotations

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
    for request in (protocol.parse_send({"text": "hi"}), protocol.parse_sync({})):
        with pytest.raises(AttributeError):
            request.limit = 1  # type: ignore[union-attr]
