"""`sync` honours `limit` across DynamoDB's 1 MB pages: 500 messages of 3,000 characters are 1.5 MB,
and moto, like DynamoDB, stops each Query page at 1 MB whatever its `Limit`."""

from __future__ import annotations

import time

import pytest
from chat import config, wiring
from chat.store import PUBLIC_FEED, StoredMessage, _message_item

from tests.support.world import ChatWorld

TEXT_LENGTH = 3000


def _store_large_messages(world: ChatWorld, count: int) -> list[str]:
    """``count`` public messages of 3,000 characters from alice, in the store's own item format; their ids.

    Written 25 at a time with BatchWriteItem: moto copies a whole table for every transaction, which
    makes 500 sends through the handler take half a minute.
    """
    now = time.time()
    expires_at = int(now) + 86400
    messages = [
        StoredMessage(
            world.service.ids.new_id(int(now * 1000) - (count - n)),
            "alice",
            None,
            f"{n:04d} " + "x" * (TEXT_LENGTH - 5),
            "2026-12-01T00:00:00.000Z",
            None,
        )
        for n in range(count)
    ]
    for start in range(0, count, 25):
        batch = messages[start : start + 25]
        world.dynamodb.batch_write_item(
            RequestItems={
                world.tables["Messages"]: [
                    {"PutRequest": {"Item": _message_item(m, PUBLIC_FEED, expires_at)}} for m in batch
                ]
            }
        )
    return [m.id for m in messages]


def test_a_query_page_stops_at_one_megabyte(world: ChatWorld) -> None:
    """The ground this stands on: one Query with Limit 500 over 1.5 MB returns fewer, and a next key."""
    _store_large_messages(world, 500)
    page = world.dynamodb.query(
        TableName=world.tables["Messages"],
        KeyConditionExpression="feed = :f",
        ExpressionAttributeValues={":f": {"S": PUBLIC_FEED}},
        Limit=500,
        ConsistentRead=True,
    )
    assert 250 < page["Count"] < 500
    assert "LastEvaluatedKey" in page


def test_sync_without_since_returns_the_whole_limit_of_large_messages(world: ChatWorld) -> None:
    """`sync` with `limit: 500` and no cursor replays the latest 500 large messages, oldest first."""
    ids = _store_large_messages(world, 520)
    bob = world.connect("bob")
    world.send(bob, "bob", {"action": "sync", "limit": 500})
    frames = world.frames(bob, "message")
    assert [f["id"] for f in frames] == ids[-500:]
    assert all(len(f["text"]) == TEXT_LENGTH for f in frames)
    [synced] = world.frames(bob, "synced")
    assert synced["more"] is False


def test_sync_from_a_cursor_pages_through_large_messages(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a cursor before 600 large messages: a first page of exactly 500 with `more`, then the last 100."""
    # Two pages of 500 at once are more than one user's sync budget allows; paging is what this is about.
    monkeypatch.setenv(config.budget_variable("sync"), "0")
    wiring.reset()
    bob = world.connect("bob")
    world.send(bob, "bob", {"action": "sync", "limit": 1})
    [start] = world.frames(bob, "synced")
    ids = _store_large_messages(world, 600)
    world.send(bob, "bob", {"action": "sync", "since": start["cursor"], "limit": 500})
    first = [f["id"] for f in world.frames(bob, "message")]
    assert first == ids[:500]
    assert world.frames(bob, "synced")[-1]["more"] is True
    world.send(
        bob, "bob", {"action": "sync", "since": world.frames(bob, "synced")[-1]["cursor"], "limit": 500}
    )
    second = [f["id"] for f in world.frames(bob, "message")][500:]
    assert [i for i in second if i not in first] == ids[500:]
