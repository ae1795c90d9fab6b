"""Public and private messages: who receives what, acks, idempotent sends, identity."""

from __future__ import annotations

import pytest

from tests.support.world import ChatWorld


def _texts(world: ChatWorld, connection_id: str) -> list[str]:
    return [f["text"] for f in world.frames(connection_id, "message")]


def test_public_message_reaches_every_open_connection(world: ChatWorld) -> None:
    """A public message goes to every session of every user, the sender's own included."""
    a1, a2, b1 = world.connect("alice"), world.connect("alice"), world.connect("bob")
    world.say(a1, "alice", "hello all")
    for connection_id in (a1, a2, b1):
        assert _texts(world, connection_id) == ["hello all"]
    frame = world.frames(b1, "message")[0]
    assert frame["from"] == "alice" and frame["to"] is None and frame["clientMsgId"] is None
    assert frame["sentAt"].endswith("Z") and frame["cursor"].startswith("c1.")


def test_private_message_reaches_recipient_and_senders_other_sessions_only(world: ChatWorld) -> None:
    """A private message reaches every session of `to` and the sender's *other* sessions, nobody else."""
    for user in ("alice", "bob", "carol"):
        world.add_user(user)
    a1, a2 = world.connect("alice"), world.connect("alice")
    b1, b2 = world.connect("bob"), world.connect("bob")
    c1 = world.connect("carol")
    world.say(a1, "alice", "psst", to="bob", clientMsgId="m-1")
    for connection_id in (b1, b2, a2):
        assert _texts(world, connection_id) == ["psst"], connection_id
    assert _texts(world, a1) == [] and _texts(world, c1) == []
    assert world.frames(a1, "ack")[0]["clientMsgId"] == "m-1"
    assert world.frames(b1, "message")[0]["to"] == "bob"


def test_slash_msg_is_the_same_as_to(world: ChatWorld) -> None:
    """`/msg <user> <text>` sends `<text>` privately to `<user>` (username compared case-insensitively)."""
    world.add_user("joao")
    a1, j1, b1 = world.connect("alice"), world.connect("joao"), world.connect("bob")
    world.say(a1, "alice", "/msg Joao oi tudo bem")
    [frame] = world.frames(j1, "message")
    assert (frame["to"], frame["text"]) == ("joao", "oi tudo bem")
    assert world.frames(b1, "message") == []


def test_a_small_audience_has_the_message_before_the_sender_has_the_ack(world: ChatWorld) -> None:
    """Delivered, then acknowledged: a client that waits for each ack keeps its messages in order."""
    a1 = world.connect("alice")
    for _ in range(5):
        world.connect("bob")
    world.say(a1, "alice", "hi", clientMsgId="first")
    posts = [entry for entry in world.management.log if entry[1] in ("ack", "message")]
    assert len(posts) == 7 and posts[-1] == (a1, "ack")
    [ack] = world.frames(a1, "ack")
    [own_copy] = world.frames(a1, "message")
    assert ack["id"] == own_copy["id"] and ack["duplicate"] is False


def test_resending_a_client_msg_id_stores_and_delivers_once(world: ChatWorld) -> None:
    """The same clientMsgId from one user is stored once; the repeated ack names the original id."""
    a1, b1 = world.connect("alice"), world.connect("bob")
    world.say(a1, "alice", "once", clientMsgId="abc-123")
    world.say(a1, "alice", "once", clientMsgId="abc-123")
    first, second = world.frames(a1, "ack")
    assert first["duplicate"] is False and second["duplicate"] is True
    assert second["id"] == first["id"]
    assert _texts(world, b1) == ["once"]
    world.say(b1, "bob", "mine", clientMsgId="abc-123")  # another sender's key is another message
    assert world.frames(b1, "ack")[0]["duplicate"] is False


def test_sender_is_the_token_user_whatever_the_body_says(world: ChatWorld) -> None:
    """A forged `from` or `username` in the body is ignored: the sender is the authorizer's user."""
    a1, b1 = world.connect("alice"), world.connect("bob")
    forged = {"action": "sendmessage", "text": "it's me", "from": "bob", "username": "bob", "sender": "bob"}
    world.send(a1, "alice", forged)
    assert world.frames(b1, "message")[0]["from"] == "alice"


def test_connect_without_an_identity_is_refused_and_writes_nothing(world: ChatWorld) -> None:
    """A $connect event without the authorizer's username is refused with 403 and stores no record."""
    from chat.handlers import connect

    from tests.support.world import event, lambda_context

    raw = event("connect")
    raw["requestContext"]["authorizer"] = {}
    assert connect.handler(raw, lambda_context())["statusCode"] == 403
    assert world.dynamodb.scan(TableName=world.tables["Connections"])["Items"] == []


def test_the_same_frame_delivered_twice_stores_and_delivers_once(world: ChatWorld) -> None:
    """A repeated invocation for one frame (same messageId), even without clientMsgId, is a duplicate."""
    from chat.handlers import sendmessage

    a1, b1 = world.connect("alice"), world.connect("bob")
    raw = world._event("message", "alice", a1)
    raw["body"] = '{"action": "sendmessage", "text": "just once"}'
    world.invoke(sendmessage.handler, raw)
    world.invoke(sendmessage.handler, raw)
    assert [f["text"] for f in world.frames(b1, "message")] == ["just once"]
    first, second = world.frames(a1, "ack")
    assert (second["id"], second["duplicate"], second["clientMsgId"]) == (first["id"], True, None)


def test_a_message_stored_but_never_fanned_out_is_delivered_on_resend(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between storing and delivering is healed by the resend: recipients then get it live."""
    a1, b1 = world.connect("alice"), world.connect("bob")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the Lambda died here")

    with monkeypatch.context() as patch:
        patch.setattr(world.service, "_deliver_message", crash)
        world.say(a1, "alice", "survivor", clientMsgId="crash-1")
    assert world.frames(b1, "message") == [] and world.frames(a1, "ack") == []
    world.say(a1, "alice", "survivor", clientMsgId="crash-1")  # resent at once: the first may still run
    assert world.frames(b1, "message") == []
    world.later(seconds=61)  # a minute on, the first invocation is surely over
    world.say(a1, "alice", "survivor", clientMsgId="crash-1")
    [message] = world.frames(b1, "message")
    assert message["text"] == "survivor"
    world.say(a1, "alice", "survivor", clientMsgId="crash-1")  # once delivered, a resend delivers nothing
    assert len(world.frames(b1, "message")) == 1
    assert [a["duplicate"] for a in world.frames(a1, "ack")] == [True, True, True]
