"""Every client mistake gets the protocol's error frame, and the connection stays usable."""

from __future__ import annotations

import io

import pytest
from chat.config import ConfigError, Settings
from chat.notifier import management_endpoint
from chat.observability import logger

from tests.support.world import ChatWorld


def _errors(world: ChatWorld, connection_id: str) -> list[tuple[str, str | None]]:
    return [(f["code"], f["clientMsgId"]) for f in world.frames(connection_id, "error")]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("{", "invalid_json"),
        ("", "invalid_json"),
        ("NaN", "invalid_json"),
        ('{"action": "sync", "limit": Infinity}', "invalid_json"),
        ("[1, 2]", "unknown_action"),
        ('"sendmessage"', "unknown_action"),
        ('{"text": "no action"}', "unknown_action"),
        ('{"action": "shout", "text": "hi"}', "unknown_action"),
        ('{"action": 7}', "unknown_action"),
        ('{"action": "sendmessage"}', "invalid_message"),
        ('{"action": "sendmessage", "text": 5}', "invalid_message"),
        ('{"action": "sendmessage", "text": "   "}', "invalid_message"),
        ('{"action": "sendmessage", "text": "hi", "to": ["bob"]}', "invalid_message"),
        ('{"action": "sendmessage", "text": "hi", "to": "x"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "hi", "clientMsgId": "has space"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "/msg"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "/msg bob"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "/msg alice hi me"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "bell \\u0007"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "half \\ud800 a pair"}', "invalid_message"),
        ('{"action": "sync", "limit": 0}', "invalid_message"),
        ('{"action": "sync", "limit": 501}', "invalid_message"),
        ('{"action": "sync", "limit": true}', "invalid_message"),
        ('{"action": "sync", "limit": "10"}', "invalid_message"),
        ('{"action": "sendmessage", "text": "hi", "to": "nobody"}', "unknown_user"),
    ],
)
def test_bad_frames_get_the_protocol_error(world: ChatWorld, frame: str, code: str) -> None:
    """Each malformed frame gets exactly one error frame with the protocol's code, and nothing is stored."""
    a1 = world.connect("alice")
    world.send(a1, "alice", frame)
    assert [c for c, _ in _errors(world, a1)] == [code]
    assert world.frames(a1, "message") == []
    world.send(a1, "alice", {"action": "ping"})  # still served afterwards
    assert world.frames(a1, "pong") == [{"type": "pong"}]


def test_text_one_past_the_limit_is_too_long_and_the_limit_itself_is_fine(world: ChatWorld) -> None:
    """4,000 characters (after trimming) is accepted; 4,001 gets text_too_long with the clientMsgId."""
    a1 = world.connect("alice")
    world.say(a1, "alice", "é" * 4000 + "  ", clientMsgId="ok")
    world.say(a1, "alice", "x" * 4001, clientMsgId="long")
    assert _errors(world, a1) == [("text_too_long", "long")]
    assert len(world.frames(a1, "message")[0]["text"]) == 4000


def test_unknown_user_error_carries_the_client_msg_id(world: ChatWorld) -> None:
    """A private message to a username with no account gets unknown_user, with the clientMsgId."""
    a1 = world.connect("alice")
    world.say(a1, "alice", "/msg ghost boo", clientMsgId="c-9")
    assert _errors(world, a1) == [("unknown_user", "c-9")]


def test_flooding_gets_rate_limited(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the send budget (a burst of 3 of 12 a minute), sends get rate_limited and are not stored."""
    monkeypatch.setenv("RATE_LIMIT_SENDMESSAGE_PER_MINUTE", "12")
    from chat import wiring

    wiring.reset()
    a1, b1 = world.connect("alice"), world.connect("bob")
    for n in range(5):
        world.say(a1, "alice", f"spam {n}", clientMsgId=f"s{n}")
    assert _errors(world, a1) == [("rate_limited", "s3"), ("rate_limited", "s4")]
    assert len(world.frames(b1, "message")) == 3
    world.say(b1, "bob", "unaffected")  # the limit is per user
    assert _errors(world, b1) == []


def test_bare_ping_text_gets_pong(world: ChatWorld) -> None:
    """The simplest client sends the text `ping` (no JSON) and gets `pong`."""
    a1 = world.connect("alice")
    world.send(a1, "alice", "ping")
    assert world.frames(a1) == [{"type": "pong"}]


def test_a_failing_table_gives_internal_error_and_is_logged(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When DynamoDB fails, the client gets internal_error (no stack leaked) and the log has the stack."""
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    a1 = world.connect("alice")
    world.dynamodb.delete_table(TableName=world.tables["Messages"])
    world.say(a1, "alice", "into the void", clientMsgId="v1")
    [error] = world.frames(a1, "error")
    assert (error["code"], error["clientMsgId"]) == ("internal_error", "v1")
    assert "Traceback" not in error["message"]
    assert "Traceback" in log.getvalue() and "ResourceNotFoundException" in log.getvalue()


def test_429_from_the_management_api_is_retried(world: ChatWorld) -> None:
    """A throttled post (429 LimitExceededException) is retried until it is delivered."""
    a1, b1 = world.connect("alice"), world.connect("bob")
    world.management.throttle_remaining[b1] = 2
    world.say(a1, "alice", "eventually")
    assert [f["text"] for f in world.frames(b1, "message")] == ["eventually"]
    assert world.management.attempts[b1] == 3


def test_one_dead_recipient_does_not_stop_delivery_to_the_others(world: ChatWorld) -> None:
    """Fan-out is best effort per recipient: a gone and a throttled-out connection, the rest still get it."""
    a1 = world.connect("alice")
    others = [world.connect(f"user{n}") for n in range(6)]
    world.management.gone.add(others[0])
    world.management.throttle_remaining[others[1]] = 99  # never gets through
    world.say(a1, "alice", "to everyone")
    for connection_id in others[2:]:
        assert [f["text"] for f in world.frames(connection_id, "message")] == ["to everyone"]


def test_missing_setting_is_named() -> None:
    """A missing environment variable fails loudly, naming it."""
    with pytest.raises(ConfigError, match="MESSAGES_TABLE"):
        Settings.from_env({"CONNECTIONS_TABLE": "c", "PRESENCE_TABLE": "p", "USER_POOL_ID": "u"})
    with pytest.raises(ConfigError, match="FANOUT_WORKERS"):
        Settings.from_env(
            {
                "CONNECTIONS_TABLE": "c",
                "PRESENCE_TABLE": "p",
                "MESSAGES_TABLE": "m",
                "USER_POOL_ID": "u",
                "FANOUT_WORKERS": "x",
            }
        )


def test_management_endpoint_comes_from_the_api_id_not_the_domain() -> None:
    """Behind a custom domain the event's domain name has no @connections: the endpoint uses the API id."""
    assert management_endpoint(api_id="abc123", region="eu-west-1", stage="prod") == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    )
