"""The suite's own rules, as pure code: frame shapes, Cognito's endpoint per partition, --only."""

from __future__ import annotations

import pytest

from conformance.cli import main, select
from conformance.frames import problems
from conformance.target import Target, TargetUnavailable, cognito_endpoint, config_from_outputs

MESSAGE = {
    "type": "message",
    "id": "01JD0000000000000000000000",
    "cursor": "c1",
    "from": "alice",
    "to": None,
    "text": "hi",
    "sentAt": "2026-11-27T01:02:03.456Z",
    "clientMsgId": None,
}


def test_a_message_frame_as_the_protocol_says_has_no_problems() -> None:
    """The v1 message frame, exactly its fields, passes."""
    assert problems(MESSAGE) == []


def test_an_extra_or_missing_field_is_a_problem() -> None:
    """Exact field sets: one field too many or too few is reported."""
    assert problems({**MESSAGE, "channel": "x"}) == ["message frame has unexpected ['channel']"]
    assert problems({k: v for k, v in MESSAGE.items() if k != "cursor"}) == ["message frame lacks ['cursor']"]


def test_presence_may_carry_at_but_need_not() -> None:
    """Version 1.1's presence.at is accepted, not required; a non-UTC one is refused."""
    presence = {"type": "presence", "user": "bob", "online": True}
    assert problems(presence) == []
    assert problems({**presence, "at": "2026-11-27T01:02:03Z"}) == []
    assert problems({**presence, "at": "2026-11-27T01:02:03+02:00"}) == [
        "presence.at is not in UTC: '2026-11-27T01:02:03+02:00'"
    ]


def test_values_of_the_wrong_type_are_problems() -> None:
    """A non-boolean duplicate, an unsorted who and an unknown error code are each caught."""
    ack = {"type": "ack", "id": "x", "cursor": "c", "clientMsgId": None, "duplicate": "no"}
    assert problems(ack) == ["ack.duplicate is not a boolean: 'no'"]
    assert problems({"type": "who", "users": ["bob", "alice"]}) == ["who.users is not sorted"]
    error = {"type": "error", "code": "oops", "message": "m", "clientMsgId": None}
    assert problems(error) == ["error.code is not an error code of the protocol: 'oops'"]


def test_frames_that_are_not_protocol_frames_are_problems() -> None:
    """API Gateway's own error body and plain text are not frames of the protocol."""
    assert problems({"message": "Internal server error", "connectionId": "x"}) == ["unknown frame type None"]
    assert problems("pong") == ["not a JSON object: 'pong'"]


def test_conversation_frames_are_checked_to_the_field() -> None:
    """history, read, typing and inbox frames as the protocol says pass; a message object with a
    `type`, an unread count past 100, history newest first or an inbox without public are caught."""
    item = {k: v for k, v in MESSAGE.items() if k != "type"}
    later = {**item, "id": "01JD0000000000000000000001"}
    assert problems({"type": "history", "with": None, "messages": [item, later], "more": False}) == []
    assert problems({"type": "history", "with": "bob", "messages": [later, item], "more": True}) == [
        "history.messages is not oldest first"
    ]
    assert problems({"type": "history", "with": None, "messages": [MESSAGE], "more": False})[0].startswith(
        "history.messages is not a message object"
    )
    assert problems({"type": "typing", "from": "alice"}) == []
    assert problems({"type": "read", "user": "alice", "with": None, "upTo": "nope"}) == [
        "read.upTo is not a message id: 'nope'"
    ]
    public = {"with": None, "last": None, "unread": 0, "readUpTo": None, "theirReadUpTo": None}
    bob = {"with": "bob", "last": item, "unread": 100, "readUpTo": None, "theirReadUpTo": item["id"]}
    assert problems({"type": "inbox", "conversations": [bob, public]}) == []
    assert problems({"type": "inbox", "conversations": [bob]}) == [
        "inbox.conversations does not list the public conversation once"
    ]
    assert problems({"type": "inbox", "conversations": [{**bob, "unread": 101}, public]}) == [
        "inbox.conversations unread 101 is not 0 to 100"
    ]
    assert problems({"type": "inbox", "conversations": [public, bob]}) == [
        "inbox.conversations is not newest first"
    ]


def test_cognito_endpoint_follows_the_partition() -> None:
    """China's regions use amazonaws.com.cn, the others amazonaws.com."""
    assert cognito_endpoint("eu-west-1") == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert cognito_endpoint("cn-north-1") == "https://cognito-idp.cn-north-1.amazonaws.com.cn/"


def test_a_stacks_outputs_say_where_it_is() -> None:
    """WebSocketUrl, Region, UserPoolId, UserPoolClientId become the target; Cognito's endpoint
    is built from the region (China's suffix in cn- regions)."""
    outputs = [
        {
            "OutputKey": "WebSocketUrl",
            "OutputValue": "wss://abc.execute-api.cn-north-1.amazonaws.com.cn/prod",
        },
        {"OutputKey": "Region", "OutputValue": "cn-north-1"},
        {"OutputKey": "UserPoolId", "OutputValue": "cn-north-1_abc"},
        {"OutputKey": "UserPoolClientId", "OutputValue": "client123"},
        {"OutputKey": "WebClientUrl", "OutputValue": "https://d111.cloudfront.net"},
    ]
    target = Target.from_config(config_from_outputs(outputs), "stack X")
    assert target.websocket_url == "wss://abc.execute-api.cn-north-1.amazonaws.com.cn/prod"
    assert (target.region, target.user_pool_id, target.user_pool_client_id) == (
        "cn-north-1",
        "cn-north-1_abc",
        "client123",
    )
    assert target.cognito_endpoint == "https://cognito-idp.cn-north-1.amazonaws.com.cn/"


def test_missing_outputs_are_named() -> None:
    """A stack without the outputs a client needs cannot be checked, and the error says which."""
    with pytest.raises(TargetUnavailable, match="stack X has no region, userPoolId, userPoolClientId"):
        Target.from_config(
            config_from_outputs([{"OutputKey": "WebSocketUrl", "OutputValue": "wss://x"}]), "stack X"
        )


def test_only_names_checks_that_exist(capsys) -> None:
    """--only with a misspelt check name stops before anything runs, with the list of names."""
    assert main(["--url", "http://127.0.0.1:9", "--only", "private-delivery,privat-delivery"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("conformance: no check named privat-delivery; the checks: ")
    assert "private-delivery" in error


def test_only_keeps_the_suites_order() -> None:
    """--only runs the named checks in the suite's own order, whatever order they are given in."""
    names = [check.name for check in select("frame-shapes, ping-action")]
    assert names == ["ping-action", "frame-shapes"]
