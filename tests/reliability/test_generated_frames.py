"""Generated frames thrown at the protocol core and at the real route handlers.

The core (``chat.protocol``) either returns a valid request or raises one of the ``RejectedFrame``
errors, never anything else; the handlers answer every frame with exactly one answer frame (an
``error`` with a known code other than ``internal_error``, or ``ack``/``pong``/``synced``/``who``)
and never let an exception escape.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from chat import config, protocol, wiring
from chat.errors import RejectedFrame
from chat.observability import logger
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.world import ChatWorld

# Every character, lone surrogates included (st.text() leaves them out by default).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
interesting_strings = st.sampled_from(
    [
        "sendmessage", "sync", "who", "ping", "$default", "/msg", "/msg bob", "/msg bob hi", "/msg alice hi",
        "bob", "alice", "ghost", "BOB", " bob ", "x" * 4000, "x" * 4001, "c1.garbage.0",
        "c1.00000000000000000000000000.0", "c1.ZZZZZZZZZZZZZZZZZZZZZZZZZZ.0", "ok-id_1", "x" * 65, "\ud800",
        "\x00", "", " ",
    ]
)  # fmt: skip
protocol_keys = st.sampled_from(["action", "text", "to", "clientMsgId", "since", "limit", "from", "id"])
protocol_dicts = st.dictionaries(protocol_keys, json_values | interesting_strings | st.integers(-2, 600))
routed_dicts = st.builds(
    lambda body, action: body | {"action": action},
    protocol_dicts,
    st.sampled_from(["sendmessage", "sync", "who", "ping", "shout"]),
)
plausible_sends = st.fixed_dictionaries(
    {"action": st.just("sendmessage"), "text": st.one_of(any_text, interesting_strings)},
    optional={
        "to": st.sampled_from(["bob", "BOB", "alice", "ghost", "x"]),
        "clientMsgId": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True) | json_values,
    },
)
plausible_syncs = st.fixed_dictionaries(
    {"action": st.just("sync")},
    optional={
        "limit": st.integers(-1, 501),
        "since": interesting_strings,
        "batch": st.one_of(st.booleans(), st.none(), st.integers(0, 1), st.just("true")),
    },
)
raw_frames = st.one_of(
    plausible_sends.map(json.dumps),
    plausible_syncs.map(json.dumps),
    any_text,
    json_values.map(json.dumps),
    protocol_dicts.map(json.dumps),
    routed_dicts.map(json.dumps),
)

ANSWER_TYPES = {"error", "ack", "pong", "synced", "who"}


def rejected_or_returned(parse: Any, *args: Any) -> Any:
    """Call a parser: a RejectedFrame is an answer, any other exception fails the test."""
    try:
        return parse(*args)
    except RejectedFrame as rejected:
        assert rejected.code in protocol.ERROR_CODES
        return rejected


@given(raw_frames)
def test_any_frame_is_parsed_or_rejected(raw: str) -> None:
    """parse_json_object and reject_unroutable only ever raise RejectedFrame."""
    rejected_or_returned(protocol.parse_json_object, raw)
    with pytest.raises(RejectedFrame):
        protocol.reject_unroutable(raw)


@given(protocol_dicts)
def test_any_send_body_is_a_valid_request_or_rejected(body: dict[str, Any]) -> None:
    """parse_send returns only requests the protocol allows, or raises RejectedFrame."""
    request = rejected_or_returned(protocol.parse_send, body)
    if isinstance(request, protocol.SendRequest):
        assert 1 <= len(request.text) <= protocol.TEXT_LIMIT and request.text == request.text.strip()
        assert request.to is None or request.to == request.to.lower()
        assert request.client_msg_id is None or protocol.CLIENT_MSG_ID_RE.fullmatch(request.client_msg_id)


@given(protocol_dicts)
def test_any_sync_body_is_a_valid_request_or_rejected(body: dict[str, Any]) -> None:
    """parse_sync returns a limit within 1..500 and a boolean batch, or raises RejectedFrame."""
    request = rejected_or_returned(protocol.parse_sync, body)
    if isinstance(request, protocol.SyncRequest):
        assert 1 <= request.limit <= protocol.SYNC_MAX_LIMIT
        assert request.batch is body.get("batch", False)


# -- the real handlers, in this process, over moto and the management-API double


ALICE = "alice-conn="


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    sink = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", sink)
    return sink


@pytest.fixture
def chat(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> ChatWorld:
    """Alice connected, Bob signed up; no rate limit in the way of many examples."""
    for name, value in config.budgets_off().items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    world.add_user("bob")
    world.connect("alice", ALICE)
    return world


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_frames)
def test_handlers_answer_every_generated_frame_exactly_once(
    chat: ChatWorld, log: io.StringIO, raw: str
) -> None:
    """sendmessage, sync and $default answer any frame with one known answer frame, and never raise."""
    before = len(chat.frames(ALICE))
    response = chat.send(ALICE, "alice", raw)
    answers = [f for f in chat.frames(ALICE)[before:] if f["type"] in ANSWER_TYPES]
    assert response == {"statusCode": 200}
    assert len(answers) == 1, answers
    event(answers[0].get("code") or answers[0]["type"])
    if answers[0]["type"] == "error":
        assert answers[0]["code"] in set(protocol.ERROR_CODES) - {"internal_error"}, answers[0]
    assert '"level":"ERROR"' not in log.getvalue()
