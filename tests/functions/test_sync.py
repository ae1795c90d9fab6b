"""Resume with one cursor: sync replays, oldest first, everything visible that a client missed."""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chat import protocol
from chat.cursor import Cursor
from chat.notifier import Delivery, RetryPolicy
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


class _HeldStore(ChatStore):
    """A store that holds each write of a message starting with "late" until ``release`` is set,
    telling ``stamped`` once that message has its id: it lands after messages stamped later."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stamped, self.release = threading.Event(), threading.Event()

    def save_message(self, message: StoredMessage, **kwargs: Any) -> SaveResult:
        if message.text.startswith("late"):
            self.stamped.set()
            assert self.release.wait(timeout=30), "the late write was never released"
        return super().save_message(message, **kwargs)


def _hold_late_writes(world: ChatWorld) -> _HeldStore:
    store = world.service.store
    held = _HeldStore(
        connections_table=store.connections_table,
        presence_table=store.presence_table,
        messages_table=store.messages_table,
        client=store.client,
    )
    world.service.store = held
    return held


def _a_late_write(world: ChatWorld, store: _HeldStore, sender: str) -> threading.Thread:
    """Start a send stamped now whose write is held; move the clock 2 s on once it is stamped, so
    the messages after it are stamped a whole 2 s later (a slow write, not a same-millisecond tie)."""
    late = threading.Thread(target=world.say, args=(sender, "alice", "late, stamped first"))
    late.start()
    assert store.stamped.wait(timeout=30)
    world.later(seconds=2)
    return late


def test_a_write_landing_after_a_later_one_is_still_replayed(world: ChatWorld) -> None:
    """A message stamped first but stored last is replayed from the cursor of the one stored first."""
    store = _hold_late_writes(world)
    a1, c1, b1 = world.connect("alice"), world.connect("carol"), world.connect("bob")
    late = _a_late_write(world, store, a1)
    world.say(c1, "carol", "fast and later")  # stamped later, stored and delivered first
    [fast] = world.frames(b1, "message")
    assert fast["text"] == "fast and later"
    world.management.gone.add(b1)  # bob drops before the late one is delivered
    store.release.set()
    late.join()
    b2 = world.connect("bob")
    world.send(b2, "bob", {"action": "sync", "since": fast["cursor"]})
    assert "late, stamped first" in [f["text"] for f in world.frames(b2, "message")]


@pytest.mark.parametrize("batch", [False, True])
def test_resuming_from_a_replay_still_gets_a_write_that_lands_later(world: ChatWorld, batch: bool) -> None:
    """A sync that ran while a write stamped earlier was still landing: resuming from the cursor of
    its replayed message or of its synced frame replays that write (the floor stays at the settled
    time, the overlap window before now, never at the newest message's time or at now)."""
    store = _hold_late_writes(world)
    b1 = world.connect("bob")
    world.say(b1, "bob", "before")
    since = world.frames(b1, "ack")[-1]["cursor"]
    a1, c1 = world.connect("alice"), world.connect("carol")
    late = _a_late_write(world, store, a1)
    world.say(c1, "carol", "fast and later")
    b2 = world.connect("bob")
    world.send(b2, "bob", {"action": "sync", "since": since, "batch": batch})
    replayed = _replayed(world, b2)
    assert [m["text"] for m in replayed] == ["before", "fast and later"]
    synced = world.frames(b2, "synced")[-1]
    assert synced["more"] is False
    store.release.set()
    late.join()
    for resume_from in (replayed[-1]["cursor"], synced["cursor"]):
        b3 = world.connect("bob")
        world.send(b3, "bob", {"action": "sync", "since": resume_from, "batch": batch})
        assert "late, stamped first" in [m["text"] for m in _replayed(world, b3)], resume_from


def _replayed(world: ChatWorld, connection_id: str) -> list[dict[str, Any]]:
    """The messages a sync replayed, from `message` frames or unpacked from `messages` frames."""
    found: list[dict[str, Any]] = []
    for frame in world.frames(connection_id):
        if frame["type"] == "message":
            found.append(frame)
        elif frame["type"] == "messages":
            found += frame["messages"]
    return found


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


def test_a_finished_sync_moves_the_floor_so_the_next_replays_nothing_old(world: ChatWorld) -> None:
    """Once a sync says `more: false`, its cursor's floor stands at the settled time (the overlap
    before now): syncing again from it repeats none of the messages older than that."""
    a1 = world.connect("alice")
    for n in range(3):
        world.say(a1, "alice", f"m{n}")
    world.later(seconds=60)
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync"})
    assert len(world.frames(b1, "message")) == 3
    world.later(seconds=60)
    before_ms = int(world.service.clock() * 1000)
    world.send(b1, "bob", {"action": "sync", "since": world.frames(b1, "synced")[-1]["cursor"]})
    after_ms = int(world.service.clock() * 1000)
    assert len(world.frames(b1, "message")) == 3  # the second sync replayed nothing
    held = Cursor.decode(world.frames(b1, "synced")[-1]["cursor"])
    assert held is not None and before_ms - 30_000 <= held.floor_ms <= after_ms - 30_000


def test_a_cursor_an_hour_old_is_still_complete(world: ChatWorld) -> None:
    """Retention is days: a cursor from an hour ago replays everything and says `complete: true`."""
    b1 = world.connect("bob")
    world.say(b1, "bob", "an hour ago")
    cursor = world.frames(b1, "ack")[-1]["cursor"]
    world.later(seconds=3600)
    world.send(b1, "bob", {"action": "sync", "since": cursor})
    assert world.frames(b1, "synced")[-1]["complete"] is True


def test_read_since_returns_the_limit_of_newer_messages_and_says_more(world: ChatWorld) -> None:
    """The store reads past `after` exactly `limit` messages (plus the repeats up to it) and says more."""
    a1 = world.connect("alice")
    for n in range(7):
        world.say(a1, "alice", f"m{n}")
    acks = world.frames(a1, "ack")
    since = Cursor.decode(acks[1]["cursor"])
    assert since is not None
    page = world.service.store.read_since(
        ["public"], floor_ms=since.floor_ms, after=since.after, limit=3, now=world.service.clock()
    )
    assert [m.text for m in page.messages] == ["m0", "m1", "m2", "m3", "m4"] and page.more is True
    page = world.service.store.read_since(
        ["public"], floor_ms=since.floor_ms, after=since.after, limit=5, now=world.service.clock()
    )
    assert [m.text for m in page.messages] == [f"m{n}" for n in range(7)] and page.more is False


# ---- batched replay (protocol version 1.1) -------------------------------------------------------


def test_a_batched_sync_replays_in_messages_frames_then_synced(world: ChatWorld) -> None:
    """With `batch: true` the same messages as a version 1 sync come packed, in storage order, each
    with its own cursor, and no `message` frame is sent; `synced` ends it as before."""
    a1 = world.connect("alice")
    world.add_user("bob")
    for n in range(6):
        world.say(a1, "alice", f"m{n}", **({"to": "bob"} if n % 2 else {}))
    b1, b2 = world.connect("bob"), world.connect("bob")
    world.send(b1, "bob", {"action": "sync", "limit": 6})
    world.send(b2, "bob", {"action": "sync", "limit": 6, "batch": True})
    v1 = world.frames(b1, "message")
    [packed] = world.frames(b2, "messages")
    assert world.frames(b2, "message") == []
    assert packed["messages"] == [{k: v for k, v in f.items() if k != "type"} for f in v1]
    assert [m["text"] for m in packed["messages"]] == [f"m{n}" for n in range(6)]
    assert [f["type"] for f in world.frames(b2)][-2:] == ["messages", "synced"]
    [(v1_synced, v11_synced)] = zip(world.frames(b1, "synced"), world.frames(b2, "synced"), strict=True)
    assert (v11_synced["more"], v11_synced["complete"]) == (v1_synced["more"], v1_synced["complete"])


def test_batched_frames_stay_within_32_kb_and_page_with_more(world: ChatWorld) -> None:
    """Long messages split over several frames of at most 32 KB (UTF-8 bytes), none that could have
    held the next one; paging with `more` and resuming from a packed cursor lose nothing."""
    b0 = world.connect("bob")
    world.say(b0, "bob", "before")
    since = world.frames(b0, "ack")[-1]["cursor"]
    a1 = world.connect("alice")
    texts = ["before"] + [f"{n:02d} " + "é😀"[n % 2] * 3_000 for n in range(24)]
    for text in texts[1:]:
        world.say(a1, "alice", text)
    b1 = world.connect("bob")
    synced = _sync_all_batched(world, b1, since, limit=15)
    assert [s["more"] for s in synced] == [True, False]
    frames = world.frames(b1, "messages")
    sizes = [len(protocol.encode(f).encode()) for f in frames]
    assert max(sizes) <= protocol.MESSAGES_FRAME_BYTES
    assert len(frames) >= math.ceil(sum(sizes) / protocol.MESSAGES_FRAME_BYTES)
    replayed = [m["text"] for f in frames for m in f["messages"]]
    assert list(dict.fromkeys(replayed)) == texts
    middle = frames[1]["messages"][-1]
    b2 = world.connect("bob")
    world.send(b2, "bob", {"action": "sync", "since": middle["cursor"], "batch": True, "limit": 100})
    resumed = [m["text"] for m in _replayed(world, b2)]
    assert resumed[resumed.index(middle["text"]) + 1 :] == texts[texts.index(middle["text"]) + 1 :]


def _sync_all_batched(
    world: ChatWorld, connection_id: str, since: str, *, limit: int
) -> list[dict[str, Any]]:
    """Batched syncs from ``since`` until `more` is false; every synced frame along the way."""
    synced: list[dict[str, Any]] = []
    body: dict[str, Any] = {"action": "sync", "batch": True, "limit": limit, "since": since}
    while not synced or synced[-1]["more"]:
        world.send(connection_id, "bob", body)
        synced.append(world.frames(connection_id, "synced")[-1])
        body["since"] = synced[-1]["cursor"]
    return synced


def test_a_batched_frame_that_fails_ends_the_sync_at_the_frame_before(world: ChatWorld) -> None:
    """When the second packed frame cannot be posted, `synced` says `more: true` with the cursor of
    the last message of the first frame, and syncing from it replays the rest."""
    a1 = world.connect("alice")
    texts = [f"{n} " + "x" * 3_900 for n in range(12)]
    for text in texts:
        world.say(a1, "alice", text)
    b1 = world.connect("bob")
    notifier = world.service.notifier
    post, posts = notifier.send, []

    def second_post_fails(connection_id: str, frame: str) -> Delivery:
        posts.append(frame)
        return Delivery.FAILED if len(posts) == 2 else post(connection_id, frame)

    notifier.send = second_post_fails  # type: ignore[method-assign]
    world.send(b1, "bob", {"action": "sync", "batch": True, "limit": 100})
    notifier.send = post  # type: ignore[method-assign]
    [first] = world.frames(b1, "messages")
    [synced] = world.frames(b1, "synced")
    assert synced["more"] is True and synced["cursor"] == first["messages"][-1]["cursor"]
    assert len(posts) == 3  # the first frame, the failed one, then synced
    world.send(b1, "bob", {"action": "sync", "batch": True, "since": synced["cursor"]})
    assert list(dict.fromkeys(m["text"] for m in _replayed(world, b1))) == texts


def test_a_batched_sync_to_a_gone_socket_prunes_it(world: ChatWorld) -> None:
    """A 410 on a packed frame prunes the connection and posts nothing more, as a version 1 sync does."""
    a1 = world.connect("alice")
    world.say(a1, "alice", "hello")
    b1 = world.connect("bob")
    world.later(seconds=60)  # past the handshake grace, in which a 410 prunes nothing
    world.management.gone.add(b1)
    world.send(b1, "bob", {"action": "sync", "batch": True})
    assert world.service.store.connections_of("bob") == []


@pytest.mark.parametrize("batch", [None, "true", 1])
def test_a_batch_that_is_not_a_boolean_is_refused(world: ChatWorld, batch: object) -> None:
    """`batch` of any other type gets invalid_message and replays nothing."""
    b1 = world.connect("bob")
    world.send(b1, "bob", {"action": "sync", "batch": batch})
    assert [f["type"] for f in world.frames(b1)] == ["error"]
    assert world.frames(b1, "error")[0]["code"] == "invalid_message"
