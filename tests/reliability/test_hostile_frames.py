"""Hostile and broken frames over real sockets against the local stack.

Every frame gets the protocol's answer (an ``error`` frame with the exact code, the ``clientMsgId``
echoed when it was valid, or the normal answer when the protocol accepts it), and the connection
keeps working afterwards. Frames the gateway itself refuses close the socket with the WebSocket
code API Gateway uses, and the user can connect again at once.

``@me`` and ``@peer`` in a frame stand for the connected user and another existing user.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from chat.cursor import Cursor, lowest_id_at

from local_stack.testing import RunningStack, User
from tests.support.chat_client import ChatClient, Frame, OpenClient

NOBODY = "nobody-has-this-name"
FUTURE_CURSOR = Cursor(after=lowest_id_at(int(time.time() * 1000) + 86_400_000), floor_ms=0).encode()
FLOOR_PAST_POSITION = f"c1.{lowest_id_at(1_000)}.zz"  # a floor later than its own position


@dataclass(frozen=True)
class Answer:
    """What the server must answer: a frame ``type``, and for errors the code and echoed id."""

    type: str
    code: str | None = None
    client_msg_id: str | None = None


def error(code: str, client_msg_id: str | None = None) -> Answer:
    return Answer("error", code, client_msg_id)


ACK, PONG, WHO, SYNCED = Answer("ack"), Answer("pong"), Answer("who"), Answer("synced")


def send(text: Any = None, **fields: Any) -> str:
    """A sendmessage frame; ``text`` is left out when None (pass ``text=...`` fields to keep it)."""
    frame = {"action": "sendmessage"} | ({"text": text} if text is not None else {}) | fields
    return json.dumps(frame)


def sync(**fields: Any) -> str:
    return json.dumps({"action": "sync"} | fields)


CASES = [
    # -- not JSON
    pytest.param("not json", error("invalid_json"), id="plain-text"),
    pytest.param("{", error("invalid_json"), id="lone-brace"),
    pytest.param('{"action": "sendmessage", "text": "hi"', error("invalid_json"), id="truncated-object"),
    pytest.param("", error("invalid_json"), id="empty-frame"),
    pytest.param("{'action': 'ping'}", error("invalid_json"), id="single-quoted"),
    pytest.param("\x00\x01\x02", error("invalid_json"), id="raw-control-bytes"),
    pytest.param(
        "[" * 5000 + "]" * 5000,
        error("invalid_json"),
        id="nested-5000-deep",
    ),
    # -- JSON, but not an object with an action
    pytest.param("[]", error("unknown_action"), id="empty-array"),
    pytest.param('["sendmessage", "hi"]', error("unknown_action"), id="array"),
    pytest.param('"sendmessage"', error("unknown_action"), id="string"),
    pytest.param("42", error("unknown_action"), id="number"),
    pytest.param("null", error("unknown_action"), id="null"),
    pytest.param("true", error("unknown_action"), id="boolean"),
    pytest.param("{}", error("unknown_action"), id="empty-object"),
    pytest.param('{"action": {"route": "sendmessage"}}', error("unknown_action"), id="action-nested"),
    pytest.param('{"action": ["sendmessage"]}', error("unknown_action"), id="action-array"),
    pytest.param('{"action": null}', error("unknown_action"), id="action-null"),
    pytest.param('{"action": 7}', error("unknown_action"), id="action-number"),
    pytest.param('{"action": ""}', error("unknown_action"), id="action-empty"),
    pytest.param('{"action": "shout"}', error("unknown_action"), id="action-unknown"),
    pytest.param(send("hi").replace("sendmessage", "SendMessage"), error("unknown_action"), id="action-case"),
    pytest.param('{"action": "$connect"}', error("unknown_action"), id="action-connect"),
    pytest.param('{"action": "$disconnect"}', error("unknown_action"), id="action-disconnect"),
    # -- sendmessage: fields missing or of the wrong type
    pytest.param(send(), error("invalid_message"), id="text-missing"),
    pytest.param(send(clientMsgId="c-1"), error("invalid_message", "c-1"), id="text-missing-id-echoed"),
    pytest.param(send(42, clientMsgId="c-2"), error("invalid_message", "c-2"), id="text-number"),
    pytest.param(send(["hi"]), error("invalid_message"), id="text-array"),
    pytest.param(send({"body": "hi"}), error("invalid_message"), id="text-object"),
    pytest.param('{"action": "sendmessage", "text": null}', error("invalid_message"), id="text-null"),
    pytest.param(send("hi", to=["@peer"]), error("invalid_message"), id="to-array"),
    pytest.param(send("hi", to=7), error("invalid_message"), id="to-number"),
    pytest.param(send("hi", to=""), error("invalid_message"), id="to-empty"),
    pytest.param(send("hi", to="x"), error("invalid_message"), id="to-too-short"),
    pytest.param(send("hi", to="../../etc"), error("invalid_message"), id="to-bad-chars"),
    # -- empty, whitespace, at and past the limit
    pytest.param(send(""), error("invalid_message"), id="text-empty"),
    pytest.param(send(" \n\t  \r\n "), error("invalid_message"), id="text-whitespace"),
    pytest.param(send("x" * 4000), ACK, id="text-at-limit"),
    pytest.param(send("   " + "x" * 4000 + "\n"), ACK, id="text-at-limit-after-trimming"),
    pytest.param(send("x" * 4001, clientMsgId="long"), error("text_too_long", "long"), id="text-past-limit"),
    # -- control characters and invalid Unicode (lone surrogates sent as JSON escapes)
    pytest.param(send("bell \u0007", clientMsgId="c-3"), error("invalid_message", "c-3"), id="text-bell"),
    pytest.param(send("nul \u0000"), error("invalid_message"), id="text-nul"),
    pytest.param(send("\u001b[31mred"), error("invalid_message"), id="text-ansi-escape"),
    pytest.param(send("del \u007f"), error("invalid_message"), id="text-del"),
    pytest.param(send("high \ud800 alone"), error("invalid_message"), id="text-lone-high-surrogate"),
    pytest.param(send("low \udfff alone"), error("invalid_message"), id="text-lone-low-surrogate"),
    pytest.param(send("swapped \udc00\ud800"), error("invalid_message"), id="text-swapped-surrogates"),
    pytest.param(send("tabs\tand\nnew lines é 😀"), ACK, id="text-tab-newline-unicode"),
    # -- /msg and private messages
    pytest.param(send("/msg"), error("invalid_message"), id="msg-no-user"),
    pytest.param(send("/msg @peer", clientMsgId="c-4"), error("invalid_message", "c-4"), id="msg-no-text"),
    pytest.param(send("/msg @peer    "), error("invalid_message"), id="msg-blank-text"),
    pytest.param(
        send(f"/msg {NOBODY} hi", clientMsgId="c-5"), error("unknown_user", "c-5"), id="msg-unknown"
    ),
    pytest.param(send("/msg @me hi", clientMsgId="c-6"), error("invalid_message", "c-6"), id="msg-oneself"),
    pytest.param(send("hi", to="@me"), error("invalid_message"), id="to-oneself"),
    pytest.param(send("hi", to=NOBODY), error("unknown_user"), id="to-unknown"),
    pytest.param(send("/msg @peer hi", to="@peer"), error("invalid_message"), id="msg-and-to"),
    pytest.param(send("hi", to="@peer"), ACK, id="to-peer"),
    # -- clientMsgId of the wrong form: refused, and not echoed
    pytest.param(send("hi", clientMsgId="x" * 65), error("invalid_message"), id="id-too-long"),
    pytest.param(send("hi", clientMsgId="has space!"), error("invalid_message"), id="id-bad-chars"),
    pytest.param(send("hi", clientMsgId="ünï"), error("invalid_message"), id="id-non-ascii"),
    pytest.param(send("hi", clientMsgId=12345), error("invalid_message"), id="id-number"),
    pytest.param(send("hi", clientMsgId=""), error("invalid_message"), id="id-empty"),
    pytest.param(send("hi", clientMsgId="x" * 64), ACK, id="id-at-limit"),
    # -- extra fields are ignored
    pytest.param(send("hi", sentAt="1970-01-01T00:00:00Z", id="forged"), ACK, id="extra-fields-ignored"),
    pytest.param('{"action": "ping", "extra": {"deep": [1, 2]}}', PONG, id="ping-extra-fields"),
    pytest.param('{"action": "who", "users": ["mallory"]}', WHO, id="who-extra-fields"),
    pytest.param("ping", PONG, id="bare-ping"),
    pytest.param(" ping\n", PONG, id="bare-ping-padded"),
    # -- sync: cursors and limits
    pytest.param(sync(since="garbage"), error("invalid_message"), id="since-garbage"),
    pytest.param(sync(since=12345), error("invalid_message"), id="since-number"),
    pytest.param(sync(since="c1." + "I" * 26 + ".0"), error("invalid_message"), id="since-bad-alphabet"),
    pytest.param(sync(since=FLOOR_PAST_POSITION), error("invalid_message"), id="since-floor-past-position"),
    pytest.param(sync(since=FUTURE_CURSOR), error("invalid_message"), id="since-from-the-future"),
    pytest.param(sync(limit=0), error("invalid_message"), id="limit-zero"),
    pytest.param(sync(limit=501), error("invalid_message"), id="limit-past-max"),
    pytest.param(sync(limit=-1), error("invalid_message"), id="limit-negative"),
    pytest.param(sync(limit=1.5), error("invalid_message"), id="limit-fraction"),
    pytest.param(sync(limit="10"), error("invalid_message"), id="limit-string"),
    pytest.param(sync(limit=True), error("invalid_message"), id="limit-boolean"),
    pytest.param(sync(limit=500), SYNCED, id="limit-at-max"),
]


@pytest.fixture
def me(stack: RunningStack) -> User:
    """A fresh user per case: a hundred cases from one user would spend its per-user budgets."""
    return stack.create_user("hostile")


@pytest.fixture(scope="module")
def peer(stack: RunningStack) -> User:
    return stack.create_user("peer")


def fill_in(frame: str, me: User, peer: User) -> str:
    return frame.replace("@me", me.username).replace("@peer", peer.username)


def assert_answer(frame: Frame, expected: Answer) -> None:
    assert frame["type"] == expected.type, frame
    if expected.type == "error":
        assert (frame["code"], frame["clientMsgId"]) == (expected.code, expected.client_msg_id), frame
        assert isinstance(frame["message"], str) and frame["message"]


def assert_still_serves(client: ChatClient) -> None:
    client.send({"action": "ping"})
    assert client.next_answer() == {"type": "pong"}


@pytest.mark.parametrize(("frame", "expected"), CASES)
def test_hostile_frame_gets_the_protocols_answer(
    frame: str, expected: Answer, me: User, peer: User, open_client: OpenClient
) -> None:
    """The frame gets exactly the protocol's answer, and the connection answers a ping afterwards."""
    client = open_client(me)
    client.send(fill_in(frame, me, peer))
    assert_answer(client.next_answer(), expected)
    assert_still_serves(client)


def test_forged_from_is_ignored_and_the_sender_is_the_tokens_user(
    me: User, peer: User, open_client: OpenClient
) -> None:
    """A ``from`` field naming someone else changes nothing: the message is from the token's user."""
    client, watcher = open_client(me), open_client(peer)
    ack = client.say("who am i", **{"from": peer.username})
    delivered = watcher.wait_type("message", id=ack["id"])
    assert delivered["from"] == me.username


def test_frame_past_32_kb_closes_with_1009_and_the_user_reconnects(me: User, open_client: OpenClient) -> None:
    """One frame over 32 KB closes the socket with 1009 (as API Gateway does); a new connection works."""
    client = open_client(me)
    client.send(send("x" * (33 * 1024)))
    assert client.closed_code() == 1009
    assert_still_serves(open_client(me))


def test_binary_frame_closes_with_1003_and_the_user_reconnects(me: User, open_client: OpenClient) -> None:
    """Invalid UTF-8 as a binary frame closes the socket with 1003; a new connection works."""
    client = open_client(me)
    client.send(b'{"action": "ping"}\xff\xfe')
    assert client.closed_code() == 1003
    assert_still_serves(open_client(me))


def test_invalid_utf8_text_frame_closes_with_1007_and_the_user_reconnects(
    me: User, open_client: OpenClient
) -> None:
    """A text frame that is not UTF-8 closes the socket with 1007; a new connection works."""
    client = open_client(me)
    client.socket.send(b'{"action": "sendmessage", "text": "\xc3\x28"}', text=True)
    assert client.closed_code() == 1007
    assert_still_serves(open_client(me))
