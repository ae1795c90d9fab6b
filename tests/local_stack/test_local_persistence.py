"""State that survives a restart of the local stack, over real processes and sockets: accounts,
the user pool's ids and every table through ``kill -9`` and a clean stop; ``--fresh`` starts
empty; old connections are forgotten; one stack per data directory."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_stack.testing import RunningStack, User, running_stack
from tests.support.chat_client import ChatClient

pytestmark = pytest.mark.slow


def send(client: ChatClient, text: str, **fields: Any) -> dict[str, Any]:
    """Send a message and return its ack."""
    client_msg_id = f"m-{uuid.uuid4().hex[:12]}"
    client.send({"action": "sendmessage", "text": text, "clientMsgId": client_msg_id, **fields})
    return client.wait_type("ack", clientMsgId=client_msg_id)


def synced_texts(client: ChatClient) -> list[str]:
    """The texts a ``sync`` without a cursor replays (the latest the user may see)."""
    client.send({"action": "sync", "limit": 100})
    client.wait_type("synced")
    return [frame["text"] for frame in client.frames if frame.get("type") == "message"]


def table_items(stack: RunningStack, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.aws_client("dynamodb").scan(TableName=stack.table_names[logical_id])[
        "Items"
    ]
    return items


def test_kill_9_keeps_accounts_ids_and_messages(tmp_path: Path) -> None:
    """After kill -9 of stack and moto: the password signs in, same pool ids, messages sync, tokens work."""
    with running_stack(data_dir=tmp_path) as first:
        alice, bob = first.create_user("alice"), first.create_user("bob")
        time.sleep(1.5)  # past the one second a crash may lose: the accounts must be on disk by now
        alice_socket = ChatClient.connect(first, alice)
        public = send(alice_socket, "before the crash")
        private = send(alice_socket, "psst", to=bob.username)
        first.kill()  # right after the acks: nothing waits for a snapshot
        old_config = first.config
    with running_stack(data_dir=tmp_path) as second:
        assert second.config["userPoolId"] == old_config["userPoolId"]
        assert second.config["userPoolClientId"] == old_config["userPoolClientId"]
        again = second.sign_in(alice.username, alice.password)
        alice_again = ChatClient.connect(second, again)
        assert {"before the crash", "psst"} <= set(synced_texts(alice_again))
        ids = {f["id"] for f in alice_again.frames if f.get("type") == "message"}
        assert {public["id"], private["id"]} <= ids
        # A page open across the restart still holds bob's token from before: it connects.
        bob_again = ChatClient.connect(second, bob)
        assert "psst" in synced_texts(bob_again)
        alice_again.close()
        bob_again.close()


def test_old_connections_are_forgotten_at_start(tmp_path: Path) -> None:
    """Connection and presence records from before a crash are gone after a restart; who lists live users."""
    with running_stack(data_dir=tmp_path) as first:
        carol = first.create_user("carol")
        watcher = ChatClient.connect(first, carol)
        watcher.send({"action": "who"})
        assert watcher.wait_type("who")["users"] == [carol.username]
        assert table_items(first, "Connections") and table_items(first, "Presence")
        first.kill()
    with running_stack(data_dir=tmp_path) as second:
        assert table_items(second, "Connections") == []
        assert table_items(second, "Presence") == []
        dave = second.create_user("dave")
        watcher = ChatClient.connect(second, dave)
        watcher.send({"action": "who"})
        assert watcher.wait_type("who")["users"] == [dave.username]
        watcher.close()


def test_clean_stop_loses_nothing(tmp_path: Path) -> None:
    """A user signed up and a message sent just before Ctrl-C are both there after the restart."""
    with running_stack(data_dir=tmp_path) as first:
        erin = first.create_user("erin")  # then stop at once: no periodic save has run yet
        last = send(ChatClient.connect(first, erin), "last words")
    with running_stack(data_dir=tmp_path) as second:
        client = ChatClient.connect(second, second.sign_in(erin.username, erin.password))
        client.send({"action": "sync", "limit": 10})
        client.wait_type("synced")
        assert last["id"] in {f["id"] for f in client.frames if f.get("type") == "message"}
        client.close()


def test_fresh_starts_empty(tmp_path: Path) -> None:
    """``fresh`` deletes what the data directory held: the old user is unknown, the pool is new."""
    with running_stack(data_dir=tmp_path) as first:
        frank: User = first.create_user("frank")
        old_pool = first.config["userPoolId"]
    with running_stack(data_dir=tmp_path, fresh=True) as second:
        assert second.config["userPoolId"] != old_pool
        with pytest.raises(ClientError) as refused:
            second.sign_in(frank.username, frank.password)
        assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
        assert table_items(second, "Messages") == []


def test_second_stack_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Two stacks on one data directory would overwrite each other: the second refuses, and says why."""
    with (
        running_stack(data_dir=tmp_path),
        pytest.raises(RuntimeError) as refused,
        running_stack(data_dir=tmp_path),
    ):
        pass
    assert "another local stack is using" in str(refused.value)


def test_default_data_dir_is_fresh_per_stack() -> None:
    """``running_stack()`` without a data directory starts empty each time: tests never share accounts."""
    with running_stack() as first:
        grace = first.create_user("grace")
        first_dir = first.data_dir
    with running_stack() as second:
        assert second.data_dir != first_dir
        with pytest.raises(ClientError):
            second.sign_in(grace.username, grace.password)
