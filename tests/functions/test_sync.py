"""Resume with one cursor: sync replays, oldest first, everything visible that a client missed."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chat.cursor import Cursor
from chat.notifier import RetryPolicy
from chat.store import ChatStore, SaveResult, StoredMessage

from tests.support.world import ChatWorld


def _sync_all(
    world: ChatWorld, connection_id: str, username: str, since: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    """Call sync until `more` is false; every synced frame received along the way."""
    synced: list[dict[str, Any]] = []
    while True:
        body: dict[str, Any] = {"action": "sync", "limit": limit}
        if since is not None:
            body["since"] = since
        world.send(connection_id, username, body)
        synced.append(world.frames(connection_id, "synced")[-1])
        since = synced[-1]["cursor"]
        if not synced[-1]["more"]:
            return synced


def _ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["id"] for f in frames]


def test_private_message_to_an_offline_user_arrives_on_sync(world: ChatWorld) -> None:
    """A private message sent while its recipient was offline is stored and replayed on their next sync."""
    world.add_user("bob")
    a1 = world.connect("alice")
    world.say(a1, "alice", "are you there?", to="bob")
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync"})
    [message] = world.frames(b1, "message")
    assert (message["from"], message["to"], message["text"]) == ("alice", "bob", "are you there?")
    assert world.frames(b1, "synced")[0]["more"] is False


def test_sync_without_since_gives_the_latest_messages_oldest_first(world: ChatWorld) -> None:
    """Without `since`, sync replays the latest `limit` visible messages, oldest first, then synced."""
    a1 = world.connect("alice")
    for n in range(5):
        world.say(a1, "alice", f"m{n}")
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync", "limit": 3})
    assert [f["text"] for f in world.frames(b1, "message")] == ["m2", "m3", "m4"]
    [synced] = world.frames(b1, "synced")
    assert synced["more"] is False and synced["complete"] is True


def test_sync_shows_only_messages_visible_to_the_user(world: ChatWorld) -> None:
    """Replay holds public messages and the user's own private ones, never someone else's."""
    for user in ("bob", "carol"):
        world.add_user(user)
    a1 = world.connect("alice")
    world.say(a1, "alice", "public")
    world.say(a1, "alice", "for bob", to="bob")
    world.say(a1, "alice", "for carol", to="carol")
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync"})
    assert [f["text"] for f in world.frames(b1, "message")] == ["public", "for bob"]
    world.send(a1, "alice", {"action": "sync"})
    assert [f["text"] for f in world.frames(a1, "message")][-3:] == ["public", "for bob", "for carol"]


def test_more_pages_through_a_long_gap_without_loss_or_loop(world: ChatWorld) -> None:
    """A gap longer than `limit` replays over several syncs with `more`: nothing lost, no loop."""
    b1 = world.connect("bob")
    world.say(b1, "bob", "before")
    cursor = world.frames(b1, "ack")[-1]["cursor"]
    a1 = world.connect("alice")
    for n in range(23):
        world.say(a1, "alice", f"gap {n}")
    b2 = world.connect("bob")
    synced = _sync_all(world, b2, "bob", cursor, limit=5)
    assert [s["more"] for s in synced] == [True] * (len(synced) - 1) + [False]
    texts = [f["text"] for f in world.frames(b2, "message")]
    unique = list(dict.fromkeys(texts))
    assert unique == ["before"] + [f"gap {n}" for n in range(23)]


def test_a_garbage_or_future_cursor_is_refused(world: ChatWorld) -> None:
    """A cursor this server never issued, or one from the future, gets invalid_message."""
    b1 = world.connect("bob")
    future = Cursor(after=world.service.ids.new_id(int((time.time() + 3600) * 1000)), floor_ms=0).encode()
    for since in ("garbage", "c1.!!.zz", 42, future):
        world.send(b1, "bob", {"action": "sync", "since": since})
    assert [f["code"] for f in world.frames(b1, "error")] == ["invalid_message"] * 4


def test_a_cursor_older_than_retention_reports_incomplete(world: ChatWorld) -> None:
    """Resuming from before the retention period says `complete: false`: some history is gone."""
    b1 = world.connect("bob")
    world.say(b1, "bob", "old news")
    old_cursor = world.frames(b1, "ack")[-1]["cursor"]
    world.send(b1, "bob", {"action": "sync", "since": old_cursor})
    assert world.frames(b1, "synced")[-1]["complete"] is True
    seen = len(world.frames(b1, "message"))
    world.later(seconds=8 * 86400)  # past the 7-day retention
    world.send(b1, "bob", {"action": "sync", "since": old_cursor})
    synced = world.frames(b1, "synced")[-1]
    assert synced["complete"] is False
    assert world.frames(b1, "message")[seen:] == []  # expired, so not replayed


class _SlowStore(ChatStore):
    """A store whose writes of messages starting with "slow" land late, after later-stamped ones."""

    def save_message(self, message: StoredMessage, **kwargs: Any) -> SaveResult:
        if message.text.startswith("slow"):
            time.sleep(0.3)
        return super().save_message(message, **kwargs)


def test_a_write_landing_after_a_later_one_is_still_replayed(world: ChatWorld) -> None:
    """A message stamped first but stored last is replayed from the cursor of the one stored first."""
    service = world.service
    service.store = _SlowStore(
        connections_table=service.store.connections_table,
        presence_table=service.store.presence_table,
        messages_table=service.store.messages_table,
        client=service.store.client,
    )
    a1, c1, b1 = world.connect("alice"), world.connect("carol"), world.connect("bob")
    slow = threading.Thread(target=world.say, args=(a1, "alice", "slow and early"))
    slow.start()
    time.sleep(0.05)
    world.say(c1, "carol", "fast and late")  # stamped later, stored and delivered first
    [fast] = world.frames(b1, "message")
    assert fast["text"] == "fast and late"
    world.management.gone.add(b1)  # bob drops before the slow one is delivered
    slow.join()
    b2 = world.connect("bob")
    world.send(b2, "bob", {"action": "sync", "since": fast["cursor"]})
    assert "slow and early" in [f["text"] for f in world.frames(b2, "message")]


def test_concurrent_senders_then_resume_from_the_last_frame_seen(world: ChatWorld) -> None:
    """Six users sending at once: live frames up to a drop plus sync from the last cursor hold all."""
    senders = [f"user{n}" for n in range(6)]
    for user in senders:
        world.add_user(user)
    sender_connections = {user: world.connect(user) for user in senders}
    reader = world.connect("reader")
    world.add_user("reader")
    dropped = threading.Event()

    def send_some(user: str) -> None:
        for n in range(8):
            to = "reader" if n % 3 == 0 else None  # some private, mostly public
            world.say(sender_connections[user], user, f"{user} #{n}", **({"to": to} if to else {}))
            if user == "user0" and n == 3:
                world.management.gone.add(reader)  # the reader's socket drops mid-stream
                dropped.set()
            time.sleep(random.uniform(0, 0.01))

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        list(pool.map(send_some, senders))
    assert dropped.is_set()
    live = world.frames(reader, "message")
    resumed = world.connect("reader")
    _sync_all(world, resumed, "reader", live[-1]["cursor"] if live else None, limit=7)
    replayed = world.frames(resumed, "message")
    received = {f["id"] for f in live + replayed}
    acked = {ack["id"] for cid in sender_connections.values() for ack in world.frames(cid, "ack")}
    assert acked <= _stored_ids(world, ["public", "user#reader"]) == received
    first_copies = list({f["id"]: f for f in replayed}.values())  # a dict keeps first-seen order
    assert _ids(first_copies) == sorted(_ids(first_copies))  # replay is in storage order
    for user in senders:  # and each sender's messages in the order sent
        mine = [f["text"] for f in first_copies if f["from"] == user]
        assert mine == sorted(mine, key=lambda text: int(text.split("#")[1]))


def _stored_ids(world: ChatWorld, feeds: list[str]) -> set[str]:
    """Every message id stored in the given feeds, read straight from the table."""
    ids: set[str] = set()
    for feed in feeds:
        pages = world.dynamodb.get_paginator("query").paginate(
            TableName=world.tables["Messages"],
            KeyConditionExpression="feed = :f",
            ExpressionAttributeValues={":f": {"S": feed}},
        )
        ids |= {item["id"]["S"] for page in pages for item in page["Items"]}
    return ids


def test_every_replayed_frame_carries_a_cursor_to_resume_from(world: ChatWorld) -> None:
    """Each replayed frame's cursor is valid, and resuming from one mid-way replays the rest."""
    a1 = world.connect("alice")
    for n in range(6):
        world.say(a1, "alice", f"m{n}")
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync", "limit": 6})
    replayed = world.frames(b1, "message")
    assert all(Cursor.decode(f["cursor"]) is not None for f in replayed)
    b2 = world.connect("bob")  # the first socket dropped after the third frame
    world.send(b2, "bob", {"action": "sync", "since": replayed[2]["cursor"]})
    texts = [f["text"] for f in world.frames(b2, "message")]
    assert set(texts) >= {"m3", "m4", "m5"} and texts == sorted(texts)


def test_a_replay_post_that_fails_ends_the_sync_with_more(world: ChatWorld) -> None:
    """When a replayed frame cannot be posted, sync stops with `more: true` at what was delivered."""
    a1 = world.connect("alice")
    for n in range(4):
        world.say(a1, "alice", f"m{n}")
    b1 = world.connect("bob")
    world.management.throttle_remaining[b1] = (
        RetryPolicy().attempts
    )  # the first replayed frame fails for good
    world.send(b1, "bob", {"action": "sync", "limit": 10})
    [synced] = world.frames(b1, "synced")
    assert world.frames(b1, "message") == [] and synced["more"] is True
    world.send(b1, "bob", {"action": "sync", "since": synced["cursor"], "limit": 10})
    assert [f["text"] for f in world.frames(b1, "message")] == ["m0", "m1", "m2", "m3"]
    assert world.frames(b1, "synced")[-1]["more"] is False
