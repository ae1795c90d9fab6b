"""Who receives a frame is decided by strongly consistent reads: a store whose eventually consistent
reads lag behind its writes (``ReadLag``, as DynamoDB may) still delivers to a connection recorded
a moment before the send."""

from __future__ import annotations

import pytest

from tests.support.read_lag import ReadLag
from tests.support.world import ChatWorld


@pytest.fixture
def lag(world: ChatWorld) -> ReadLag:
    """Every eventually consistent read of the handlers' DynamoDB client misses the last minute's writes."""
    return ReadLag(world.service.store.client, seconds=60).know(*world.tables.values())


def _texts(world: ChatWorld, connection_id: str) -> list[str]:
    return [f["text"] for f in world.frames(connection_id, "message")]


def test_the_lag_hides_fresh_items_from_eventually_consistent_reads(world: ChatWorld, lag: ReadLag) -> None:
    """The harness works: a fresh connection is missing from a plain Scan and present in a consistent one."""
    connection_id = world.connect("alice")
    store = world.service.store
    scan = {"TableName": world.tables["Connections"]}
    assert store.client.scan(**scan)["Items"] == []
    [item] = store.client.scan(**scan, ConsistentRead=True)["Items"]
    assert item["connectionId"]["S"] == connection_id


def test_a_private_message_reaches_a_device_connected_just_before(world: ChatWorld, lag: ReadLag) -> None:
    """Bob's phone connects, alice sends him a private message at once: the phone has it, and so has
    alice's other tab (her other sessions come from the same consistent read)."""
    world.add_user("bob")
    alice_laptop = world.connect("alice")
    alice_tab = world.connect("alice")
    bob_phone = world.connect("bob")
    world.say(alice_laptop, "alice", "are you there?", to="bob")
    assert _texts(world, bob_phone) == ["are you there?"]
    assert _texts(world, alice_tab) == ["are you there?"]
    assert _texts(world, alice_laptop) == []


def test_a_public_message_reaches_a_connection_recorded_just_before(world: ChatWorld, lag: ReadLag) -> None:
    """The public fan-out's Scan is strongly consistent: a socket opened a moment ago gets the message."""
    alice = world.connect("alice")
    bob = world.connect("bob")
    world.say(alice, "alice", "hello")
    assert _texts(world, bob) == ["hello"]
    assert _texts(world, alice) == ["hello"]


def test_who_lists_a_user_who_just_connected(world: ChatWorld, lag: ReadLag) -> None:
    """`who` reads presence strongly consistently: a user online for a moment is listed."""
    alice = world.connect("alice")
    world.connect("bob")
    world.send(alice, "alice", {"action": "who"})
    [who] = world.frames(alice, "who")
    assert who["users"] == ["alice", "bob"]
