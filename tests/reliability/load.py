"""A load run against the local stack: many sessions of many users, a steady stream of public and
private messages, sessions dropped and resumed from their cursor; then what each session holds is
compared with what the Messages table says it should hold.

A *session* is one client: it connects, sends one message at a time (the next once the previous is
acked, so "the order sent" is defined), keeps every frame, and after a drop reconnects and calls
``sync`` from the latest cursor it holds until ``more`` is false. Texts are ``<session>:<seq>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local_stack.testing import RunningStack, User
from tests.support.feeds import feed_items

Frame = dict[str, Any]
ACK_TIMEOUT_S = 15.0
SYNC_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LoadPlan:
    users: int
    sessions_per_user: int
    seconds: float
    messages_per_second: float
    private_share: float = 0.6
    drops_per_second: float = 1.0
    batch: int = 20  # sessions opened or resumed at once


@dataclass
class Figures:
    connections: int = 0
    users: int = 0
    seconds: float = 0.0
    public: int = 0
    private: int = 0
    reconnects: int = 0
    live_frames: int = 0
    recovered_by_sync: int = 0
    lost: int = 0
    foreign_private: int = 0
    live_out_of_order: int = 0
    handshake_retries: int = 0

    def summary(self) -> str:
        return (
            f"{self.connections} connections of {self.users} users, {self.seconds:.0f} s, "
            f"{self.public + self.private} messages ({self.public} public, {self.private} private), "
            f"{self.reconnects} reconnects, {self.live_frames} live deliveries, "
            f"{self.recovered_by_sync} recovered by sync, {self.handshake_retries} handshakes retried, "
            f"lost {self.lost}"
        )


@dataclass
class Session:
    tag: str
    user: User
    url: str
    socket: ClientConnection | None = None
    cursor: str | None = None
    received: dict[str, Frame] = field(default_factory=dict)
    live: list[Frame] = field(default_factory=list)
    acks: dict[str, asyncio.Future[Frame]] = field(default_factory=dict)
    synced: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    sent: int = 0
    busy: bool = False
    resuming: bool = False
    handshake_retries: int = 0
    history: list[str] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None
    conflicts: list[tuple[Frame, Frame]] = field(default_factory=list)

    async def open(self) -> None:
        """Connect; a refused handshake (a $connect that failed under load) is retried with backoff."""
        for attempt in range(6):
            try:
                self.socket = await connect(self.url, open_timeout=60, ping_interval=None, max_queue=None)
                break
            except InvalidStatus:
                if attempt == 5:
                    raise
                self.handshake_retries += 1
                await asyncio.sleep(0.2 * 2**attempt)
        assert self.socket is not None
        self.history.append(f"{time.time():.3f} open")
        self.reader = asyncio.create_task(self._read(self.socket))

    async def drop(self) -> None:
        """Close abruptly (no close handshake), as a lost network does."""
        assert self.socket is not None and self.reader is not None
        self.history.append(f"{time.time():.3f} drop, cursor {self.cursor}")
        self.socket.transport.abort()
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await self.reader
        self.socket = None

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader

    async def say(self, to: str | None) -> Frame:
        """Send the next message and wait for its ack, resending with the same clientMsgId if need be."""
        self.sent += 1
        client_msg_id = f"{self.tag}-{self.sent}"
        frame = {"action": "sendmessage", "text": f"{self.tag}:{self.sent}", "clientMsgId": client_msg_id}
        if to is not None:
            frame["to"] = to
        for _ in range(3):
            future = self.acks[client_msg_id] = asyncio.get_running_loop().create_future()
            assert self.socket is not None
            await self.socket.send(json.dumps(frame))
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(future, ACK_TIMEOUT_S)
        raise AssertionError(f"{self.tag}: no ack for {client_msg_id}")

    async def resume(self) -> int:
        """``sync`` from the latest cursor until ``more`` is false; how many frames it replayed."""
        replayed = 0
        self.resuming = True
        while True:
            assert self.socket is not None
            before = len(self.received)
            since = {"since": self.cursor} if self.cursor else {}
            # The default page: a sync of 500 costs 21 of the 30 units a user may spend at once.
            await self.socket.send(json.dumps({"action": "sync", "limit": 100} | since))
            synced = await asyncio.wait_for(self.synced.get(), SYNC_TIMEOUT_S)
            replayed += len(self.received) - before
            self.history.append(
                f"{time.time():.3f} synced since {since} -> {synced}, {len(self.received) - before} new"
            )
            self.cursor = synced["cursor"]
            if not synced["more"]:
                self.resuming = False
                return replayed

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                self._take(json.loads(raw))

    def _take(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "message":
            known = self.received.setdefault(frame["id"], frame)
            if _content(known) != _content(frame):
                self.conflicts.append((known, frame))
            if not self.resuming:
                self.live.append(frame)
            self.cursor = frame["cursor"]
        elif kind == "ack":
            self.cursor = frame["cursor"]
            self.acked.add(frame["id"])  # the sender's copy: its own private message comes back only as this
            future = self.acks.get(frame["clientMsgId"])
            if future is not None and not future.done():
                future.set_result(frame)
        elif kind == "synced":
            self.synced.put_nowait(frame)


def _content(frame: Frame) -> tuple[Any, ...]:
    return (frame["from"], frame["to"], frame["text"], frame["clientMsgId"])


async def in_batches(steps: list[Callable[[], Awaitable[Any]]], size: int) -> None:
    for start in range(0, len(steps), size):
        await asyncio.gather(*(step() for step in steps[start : start + size]))


def create_users(stack: RunningStack, count: int) -> list[User]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: stack.create_user("load"), range(count)))


async def run_load(
    stack: RunningStack, users: list[User], plan: LoadPlan, seed: int = 7
) -> tuple[list[Session], int]:
    """Drive the plan; every session ends resumed and closed. The sessions, and how many reconnects."""
    rng = random.Random(seed)
    sessions = [
        Session(f"s{n}x{k}", user, stack.connect_url(user.access_token))
        for n, user in enumerate(users)
        for k in range(plan.sessions_per_user)
    ]
    # In batches: each user's first connection announces presence to every open connection, and
    # a 2-core machine runs a few dozen invocations at a time before they pass their timeouts.
    await in_batches([s.open for s in sessions], plan.batch)
    await in_batches([s.resume for s in sessions], plan.batch)  # a cursor from before the first message
    figures_reconnects = 0
    stop_at = time.monotonic() + plan.seconds
    in_flight: set[asyncio.Task[Any]] = set()

    def idle() -> Session:
        while True:
            session = rng.choice(sessions)
            if not session.busy and session.socket is not None:
                return session

    async def one_message(session: Session, to: str | None) -> None:
        try:
            await session.say(to)
        finally:
            session.busy = False

    async def one_drop(session: Session) -> None:
        nonlocal figures_reconnects
        try:
            await session.drop()
            await asyncio.sleep(rng.uniform(0.1, 1.5))
            await session.open()
            await session.resume()
            figures_reconnects += 1
        finally:
            session.busy = False

    def start(task: Any) -> None:
        in_flight.add(asyncio.ensure_future(task))

    next_message = next_drop = time.monotonic()
    while time.monotonic() < stop_at:
        now = time.monotonic()
        if now >= next_message:
            session = idle()
            session.busy = True
            private = rng.random() < plan.private_share
            to = rng.choice([u for u in users if u is not session.user]).username if private else None
            start(one_message(session, to))
            next_message += rng.expovariate(plan.messages_per_second)
        if now >= next_drop:
            session = idle()
            session.busy = True
            start(one_drop(session))
            next_drop += rng.expovariate(plan.drops_per_second)
        done = {t for t in in_flight if t.done()}
        for task in done:
            task.result()  # a failed send or resume fails the run
        in_flight -= done
        await asyncio.sleep(min(next_message, next_drop, stop_at) - time.monotonic())
    await asyncio.gather(*in_flight)
    await asyncio.sleep(2)  # let the last fan-outs land
    await in_batches([s.resume for s in sessions], plan.batch)
    await in_batches([s.close for s in sessions], plan.batch)
    return sessions, figures_reconnects


# -- the property check


def stored_feed(stack: RunningStack, feed: str) -> list[dict[str, Any]]:
    return feed_items(stack.aws_client("dynamodb"), stack.table_names["Messages"], feed)


def check(stack: RunningStack, sessions: list[Session], seconds: float, reconnects: int) -> Figures:
    """Compare every session with the table; raise AssertionError naming the first difference."""
    public = stored_feed(stack, "public")
    private = {u: stored_feed(stack, f"user#{u}") for u in {s.user.username for s in sessions}}
    figures = Figures(
        connections=len(sessions),
        users=len(private),
        seconds=seconds,
        public=len(public),
        private=len({item["id"]["S"] for items in private.values() for item in items}),
        reconnects=reconnects,
    )
    owner = {s.tag: s.user.username for s in sessions}
    for item in public + [i for items in private.values() for i in items]:
        tag = item["text"]["S"].split(":")[0]
        assert item["from"]["S"] == owner[tag], f"stored with a sender other than the token's: {item}"
    assert_stored_in_order_sent(public + [i for items in private.values() for i in items])
    public_ids = {item["id"]["S"] for item in public}
    by_id = {item["id"]["S"]: item for item in public + [i for items in private.values() for i in items]}

    def describe(message_id: str) -> str:
        item = by_id[message_id]
        to = item.get("to", {}).get("S")
        return f"{message_id} {item['sentAt']['S']} {item['from']['S']} -> {to} {item['text']['S']}"

    gaps: list[str] = []
    for session in sessions:
        due = public_ids | {item["id"]["S"] for item in private[session.user.username]}
        got = set(session.received) | session.acked
        live = {f["id"] for f in session.live} | session.acked
        figures.live_frames += len(session.live)
        figures.handshake_retries += session.handshake_retries
        figures.lost += len(due - got)
        figures.recovered_by_sync += len(due - live)
        assert not session.conflicts, f"{session.tag}: one id, two contents: {session.conflicts[0]}"
        foreign = [
            f
            for f in session.received.values()
            if f["to"] and session.user.username not in (f["from"], f["to"])
        ]
        figures.foreign_private += len(foreign)
        assert not foreign, f"{session.tag} received another user's private message: {foreign[0]}"
        if got != due and len(gaps) < 3:
            gaps.append(
                "\n  ".join(
                    [f"{session.tag} ({session.user.username})", *session.history, "missing:"]
                    + [describe(i) for i in sorted(due - got)]
                    + [f"extra: {sorted(got - due)}"]
                )
            )
        figures.live_out_of_order += live_inversions(session)
    assert not gaps, f"{figures.lost} messages missing; first sessions:\n" + "\n".join(gaps)
    return figures


def assert_stored_in_order_sent(items: list[dict[str, Any]]) -> None:
    """Storage order (by id) of each session's messages is the order it sent them."""
    by_sender: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for item in {i["id"]["S"]: i for i in items}.values():
        tag, seq = item["text"]["S"].split(":")
        by_sender[tag].append((item["id"]["S"], int(seq)))
    for tag, stamped in by_sender.items():
        seqs = [seq for _, seq in sorted(stamped)]
        assert seqs == sorted(seqs), f"{tag}'s messages stored out of the order sent: {seqs}"


def live_inversions(session: Session) -> int:
    """Live frames from one sender that arrived after a later one of the same sender."""
    latest: dict[str, int] = {}
    inversions = 0
    for frame in session.live:
        tag, seq = frame["text"].split(":")
        if int(seq) < latest.get(tag, 0):
            inversions += 1
        latest[tag] = max(latest.get(tag, 0), int(seq))
    return inversions
