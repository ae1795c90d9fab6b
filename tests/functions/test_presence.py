"""Presence is per user: online with the first connection, offline with the last, never once per tab."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.world import ChatWorld


def _presence(world: ChatWorld, connection_id: str) -> list[tuple[str, bool]]:
    return [(f["user"], f["online"]) for f in world.frames(connection_id, "presence")]


def test_two_tabs_announce_online_and_offline_once(world: ChatWorld) -> None:
    """A second tab opening or the first of two closing tells nobody anything."""
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    a2 = world.connect("alice")
    assert _presence(world, b1) == [("alice", True)]
    world.disconnect(a1, "alice")
    assert _presence(world, b1) == [("alice", True)]
    world.disconnect(a2, "alice")
    assert _presence(world, b1) == [("alice", True), ("alice", False)]


def test_simultaneous_connects_and_closes_announce_once(world: ChatWorld) -> None:
    """Eight tabs connecting, then closing, at the same instant: exactly one online and one offline."""
    b1 = world.connect("bob")
    ids = [f"tab{n:03d}=" for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda cid: world.connect("alice", cid), ids))
    assert _presence(world, b1) == [("alice", True)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda cid: world.disconnect(cid, "alice"), ids))
    assert _presence(world, b1) == [("alice", True), ("alice", False)]


def test_disconnect_delivered_twice_is_harmless(world: ChatWorld) -> None:
    """A repeated $disconnect (the same event delivered twice) announces nothing more."""
    b1 = world.connect("bob")
    a1, a2 = world.connect("alice"), world.connect("alice")
    world.disconnect(a1, "alice")
    world.disconnect(a1, "alice")
    assert _presence(world, b1) == [("alice", True)]
    world.disconnect(a2, "alice")
    assert _presence(world, b1) == [("alice", True), ("alice", False)]


def test_who_lists_each_online_user_once_sorted(world: ChatWorld) -> None:
    """`who` answers the online users, sorted, each once however many tabs they have."""
    c1 = world.connect("carol")
    world.connect("alice")
    world.connect("alice")
    b1 = world.connect("bob")
    world.send(c1, "carol", {"action": "who"})
    assert world.frames(c1, "who") == [{"type": "who", "users": ["alice", "bob", "carol"]}]
    world.disconnect(b1, "bob")
    world.send(c1, "carol", {"action": "who"})
    assert world.frames(c1, "who")[-1]["users"] == ["alice", "carol"]


def test_a_gone_connection_is_pruned_with_its_presence(world: ChatWorld) -> None:
    """A 410 from the management API deletes that connection and, if it was the last, says offline."""
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.management.gone.add(a1)  # alice's socket died without a $disconnect
    world.later(seconds=60)
    world.say(b1, "bob", "anyone there?")
    assert _presence(world, b1)[-1] == ("alice", False)
    assert (
        world.dynamodb.get_item(TableName=world.tables["Connections"], Key={"connectionId": {"S": a1}}).get(
            "Item"
        )
        is None
    )
    world.send(b1, "bob", {"action": "who"})
    assert world.frames(b1, "who")[-1]["users"] == ["bob"]


def test_a_connection_whose_ttl_passed_does_not_hold_the_user_online(world: ChatWorld) -> None:
    """After every connection of a user outlived its TTL, the next connect announces the user again."""
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    # alice's $disconnect never came and her presence record is past its TTL.
    world.dynamodb.update_item(
        TableName=world.tables["Presence"],
        Key={"username": {"S": "alice"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    world.send(b1, "bob", {"action": "who"})
    assert world.frames(b1, "who")[-1]["users"] == ["bob"]
    a2 = world.connect("alice")
    assert _presence(world, b1) == [("alice", True), ("alice", True)]
    item = world.dynamodb.get_item(TableName=world.tables["Presence"], Key={"username": {"S": "alice"}})[
        "Item"
    ]
    assert item["conns"]["SS"] == [a2] and a1 != a2  # the stale id is forgotten


def test_a_410_during_the_handshake_grace_prunes_nothing(world: ChatWorld) -> None:
    """A just-recorded connection answering 410 may still be inside its $connect: it is kept."""
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.management.gone.add(a1)  # as API Gateway answers while alice's $connect still runs
    world.say(b1, "bob", "welcome?")
    item = world.dynamodb.get_item(TableName=world.tables["Connections"], Key={"connectionId": {"S": a1}})
    assert "Item" in item
    assert _presence(world, b1) == [("alice", True)]
