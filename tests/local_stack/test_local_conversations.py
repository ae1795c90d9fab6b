"""Version 1.1's conversation actions end to end: real sockets against the running local stack,
through its API Gateway emulator, the very handlers and moto's DynamoDB and Cognito."""

from __future__ import annotations

import uuid

from local_stack_client import Frame

from local_stack.testing import RunningStack
from tests.support.chat_client import ChatClient, OpenClient


def send(client: ChatClient, text: str, **fields: object) -> Frame:
    """Send a message and return its ack."""
    client_msg_id = f"m-{uuid.uuid4().hex[:12]}"
    client.send({"action": "sendmessage", "text": text, "clientMsgId": client_msg_id, **fields})
    return client.wait_type("ack", clientMsgId=client_msg_id)


def ask(client: ChatClient, frame: Frame, answer: str) -> Frame:
    """Send ``frame`` and return the first ``answer`` frame received after it."""
    seen = len(client.frames)
    client.send(frame)
    return client.wait_for(lambda f: f.get("type") == answer and client.frames.index(f) >= seen)


def test_history_pages_back_through_a_private_conversation(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Both directions of alice and bob's conversation, oldest first, paged with `before`."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, bob_1 = open_client(alice), open_client(bob)
    ids = [
        send(
            alice_1 if n % 2 == 0 else bob_1, f"turn {n}", to=bob.username if n % 2 == 0 else alice.username
        )["id"]
        for n in range(5)
    ]
    latest = ask(alice_1, {"action": "history", "with": bob.username, "limit": 3}, "history")
    assert [m["id"] for m in latest["messages"]] == ids[2:] and latest["more"] is True
    assert latest["with"] == bob.username
    older = ask(bob_1, {"action": "history", "with": alice.username, "before": ids[2], "limit": 3}, "history")
    assert [m["id"] for m in older["messages"]] == ids[:2] and older["more"] is False
    assert [m["text"] for m in older["messages"]] == ["turn 0", "turn 1"]


def test_read_reaches_the_readers_other_device_and_the_partner(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """alice reads on one device: her other device and bob get `read`; the same read again sends nothing."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, alice_2, bob_1 = open_client(alice), open_client(alice), open_client(bob)
    last = send(bob_1, "have you seen this?", to=alice.username)["id"]
    alice_1.send({"action": "read", "with": bob.username, "upTo": last})
    expected = {"type": "read", "user": alice.username, "with": bob.username, "upTo": last}
    assert alice_2.wait_type("read") == expected
    assert bob_1.wait_type("read") == expected
    alice_1.send({"action": "read", "with": bob.username, "upTo": last})
    barrier = send(alice_1, "barrier", to=bob.username)["id"]
    bob_1.wait_for(lambda f: f.get("id") == barrier)
    alice_2.wait_for(lambda f: f.get("id") == barrier)
    for client in (alice_1, alice_2, bob_1):
        client.drain(quiet_for=0.3)
    assert [f for f in alice_1.frames if f.get("type") in ("read", "error")] == []
    assert len([f for f in bob_1.frames if f.get("type") == "read"]) == 1
    assert len([f for f in alice_2.frames if f.get("type") == "read"]) == 1


def test_inbox_counts_unread_and_clears_when_read(stack: RunningStack, open_client: OpenClient) -> None:
    """alice's inbox lists bob's conversation with 2 unread; after she reads it, 0, on any device."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, alice_2, bob_1 = open_client(alice), open_client(alice), open_client(bob)
    send(bob_1, "one", to=alice.username)
    last = send(bob_1, "two", to=alice.username)["id"]
    rows = {row["with"]: row for row in ask(alice_1, {"action": "inbox"}, "inbox")["conversations"]}
    assert None in rows
    assert (rows[bob.username]["unread"], rows[bob.username]["last"]["text"]) == (2, "two")
    alice_1.send({"action": "read", "with": bob.username, "upTo": last})
    alice_2.wait_type("read")
    rows = {row["with"]: row for row in ask(alice_2, {"action": "inbox"}, "inbox")["conversations"]}
    assert (rows[bob.username]["unread"], rows[bob.username]["readUpTo"]) == (0, last)
    theirs = {row["with"]: row for row in ask(bob_1, {"action": "inbox"}, "inbox")["conversations"]}
    assert theirs[alice.username]["theirReadUpTo"] == last and theirs[alice.username]["unread"] == 0


def test_typing_reaches_the_recipient_once_in_three_seconds(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Three `typing` frames in a row: bob's two devices get one each, alice gets no answer."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, bob_1, bob_2 = open_client(alice), open_client(bob), open_client(bob)
    for _ in range(3):
        alice_1.send({"action": "typing", "to": bob.username})
    for client in (bob_1, bob_2):
        assert client.wait_type("typing") == {"type": "typing", "from": alice.username}
    barrier = send(alice_1, "barrier", to=bob.username)["id"]
    bob_1.wait_for(lambda f: f.get("id") == barrier)
    bob_2.wait_for(lambda f: f.get("id") == barrier)
    for client in (alice_1, bob_1, bob_2):
        client.drain(quiet_for=0.3)
    assert len([f for f in bob_1.frames if f.get("type") == "typing"]) == 1
    assert len([f for f in bob_2.frames if f.get("type") == "typing"]) == 1
    assert [f for f in alice_1.frames if f.get("type") in ("typing", "error")] == []


def test_errors_of_the_new_actions_keep_the_connection(stack: RunningStack, open_client: OpenClient) -> None:
    """The new actions' errors come as error frames, and the connection keeps answering."""
    alice = stack.create_user("alice")
    alice_1 = open_client(alice)
    for frame, code in (
        ({"action": "history", "with": alice.username}, "invalid_message"),
        ({"action": "typing", "to": "nobody-" + uuid.uuid4().hex[:8]}, "unknown_user"),
        ({"action": "read", "upTo": "not-an-id"}, "invalid_message"),
        ({"action": "history", "limit": 500}, "invalid_message"),
    ):
        assert ask(alice_1, frame, "error")["code"] == code
    assert ask(alice_1, {"action": "ping"}, "pong") == {"type": "pong"}
