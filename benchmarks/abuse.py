"""Benchmark 6: one user floods a route; how long do everyone else's private messages take?

Over the local stack, once without per-user budgets (every ``RATE_LIMIT_*_PER_MINUTE`` set to 0)
and once with the defaults. Victims: a few users each sending a private message a second to one
receiver, timed from send to the receiver's socket. After a quiet baseline, one attacker floods
each route in turn as fast as its socket takes frames — sends, ``sync`` with ``limit: 500`` over a
filled history, ``who``, ``ping`` — and reconnects whenever the server closes it, until its frames
are all sent. Measured: the victims' p50/p99 while the flood lasts and its backlog drains
(``window_s``), errors they got, what the flooder was told, and how often it was closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat import config
from chat.cursor import IdGenerator
from chat.store import ChatStore, StoredMessage
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks import machine
from benchmarks.clients import Listener, percentile, stamped_text
from benchmarks.report import OUTPUT, Report, Table
from local_stack.testing import RunningStack, User, running_stack

GOAL_FACTOR = 3.0  # a victim's p99 under a flood, at most this times its quiet p99


@dataclass
class AbuseOptions:
    victims: int = 3  # users each sending one private message a second to the receiver
    quiet_s: float = 6.0  # the baseline, measured again before each flood
    window_s: float = 10.0  # victims measured from the flood's start for this long
    settle_s: float = 15.0  # then at most this long for the flood's backlog to drain
    history: int = 300  # public messages stored before a sync flood, so a sync of 500 has work
    # A fresh stack per flood: without budgets one flood's backlog outlasts any pause.
    fresh_stacks: bool = True
    floods: dict[str, int] = field(
        default_factory=lambda: {"sendmessage": 500, "sync": 100, "who": 500, "ping": 500}
    )


FLOOD_FRAMES = {
    "sendmessage": lambda n: {"action": "sendmessage", "text": f"spam {n}"},
    "sync": lambda n: {"action": "sync", "limit": 500},
    "who": lambda n: {"action": "who"},
    "ping": lambda n: {"action": "ping"},
}


# The frame that answers an admitted request of each flooded route.
ADMITTED_ANSWERS = {"sendmessage": "ack", "sync": "synced", "who": "who", "ping": "pong"}


@dataclass
class FloodOutcome:
    sent: int = 0
    answers: int = 0  # every frame the flooder was sent (a sync's replayed messages too)
    admitted: int = 0  # requests answered as admitted (ack, synced, who, pong)
    refused: int = 0
    messages: int = 0  # message frames (what an admitted sync replays)
    closed: int = 0
    connections: int = 0  # handshakes that opened: each an authorizer, $connect and $disconnect

    def invocations(self) -> int:
        """Lambda invocations the flood caused: one per frame, three per connection."""
        return self.sent + 3 * self.connections


@dataclass
class Victims:
    """The probing users: senders, one receiver, and every error frame the senders were sent."""

    senders: list[ClientConnection]
    receiver: Listener
    errors: list[tuple[float, str]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # stamped send times, in order

    async def read_answers(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                frame = json.loads(raw)
                if frame.get("type") == "error":
                    self.errors.append((time.monotonic(), frame["code"]))

    async def probe(self, receiver_name: str, stop: asyncio.Event) -> None:
        """Each sender sends one private message a second, the senders spread over the second."""
        number, started = 0, time.monotonic()
        interval = 1.0 / len(self.senders)
        while not stop.is_set():
            await asyncio.sleep(max(0.0, started + number * interval - time.monotonic()))
            text = stamped_text(number)
            self.sent.append(float(text.split(":")[1]))
            frame = {"action": "sendmessage", "text": text, "to": receiver_name}
            await self.senders[number % len(self.senders)].send(json.dumps(frame))
            number += 1

    def latencies_ms(self, start: float, end: float, until: float) -> list[float]:
        """Round trips of the probes sent in [start, end); one never received counts as ``until`` - sent."""
        received = {sent: got for sent, got in self.receiver.receipts}
        return [(received.get(sent, until) - sent) * 1000 for sent in self.sent if start <= sent < end]


async def flood(url: str, frames: list[str], deadline: float, done: asyncio.Event) -> FloodOutcome:
    """Send every frame as fast as the socket takes them, until ``deadline``; reconnect when the
    server closes it. Answers are counted until ``done`` (the run's end): a flood's backlog is
    still being answered after its window."""
    outcome = FloodOutcome()
    while outcome.sent < len(frames) and time.monotonic() < deadline:
        try:
            socket = await connect(url, open_timeout=30, max_size=2**22, ping_interval=None)
        except (OSError, InvalidStatus, TimeoutError):
            await asyncio.sleep(0.1)
            continue
        outcome.connections += 1
        reader = asyncio.create_task(_count_answers(socket, outcome))
        with contextlib.suppress(ConnectionClosed):
            for frame in frames[outcome.sent :]:
                await socket.send(frame)
                outcome.sent += 1
                await asyncio.sleep(0)  # let the answers be read meanwhile
        # All written (or the server closed it): read answers until it closes or the run ends.
        ended = asyncio.create_task(done.wait())
        await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        outcome.closed += reader.done() and not reader.cancelled() and reader.result()
        reader.cancel()
        await socket.close()
    return outcome


async def _count_answers(socket: ClientConnection, outcome: FloodOutcome) -> bool:
    """Count answers until the socket closes; True when the server closed it."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in socket:
            frame = json.loads(raw)
            outcome.answers += 1
            outcome.admitted += frame.get("type") in ADMITTED_ANSWERS.values()
            outcome.messages += frame.get("type") == "message"
            outcome.refused += frame.get("type") == "error" and frame.get("code") == "rate_limited"
    return True


def fill_history(stack: RunningStack, count: int) -> None:
    """``count`` public messages straight into the table (no budget applies to this set-up)."""
    store = ChatStore(
        connections_table=stack.table_names["Connections"],
        presence_table=stack.table_names["Presence"],
        messages_table=stack.table_names["Messages"],
        client=stack.aws_client("dynamodb"),
    )
    now, ids = time.time(), IdGenerator()
    for n in range(count):
        message = StoredMessage(
            id=ids.new_id(int(now * 1000) - (count - n) * 10),
            sender="history",
            to=None,
            text=f"history {n} " + "x" * 200,
            sent_at="2026-01-01T00:00:00.000Z",
            client_msg_id=None,
        )
        store.save_message(message, idempotency_key=None, expires_at=int(now) + 86400)


async def settle(victims: Victims, quiet_p50_ms: float, limit_s: float) -> float:
    """Seconds until a new probe comes back within 3x the quiet median again (the backlog is gone)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        await asyncio.sleep(1.0)
        recent = [
            (got - sent) * 1000 for sent, got in victims.receiver.receipts if sent > time.monotonic() - 3.0
        ]
        if len(recent) >= 2 and max(recent) < GOAL_FACTOR * max(quiet_p50_ms, 1.0):
            return time.monotonic() - started
    return limit_s


@dataclass
class Cast:
    """Everyone in one flood, signed up before any flood starts (a backlog can slow sign-up down)."""

    receiver: User
    senders: list[User]
    flooder: User

    @classmethod
    def sign_up(cls, stack: RunningStack, victims: int) -> Cast:
        return cls(stack.create_user("receiver"), [stack.create_user("victim") for _ in range(victims)],
                   stack.create_user("flooder"))  # fmt: skip


async def scenario(
    stack: RunningStack, cast: Cast, route: str, count: int, options: AbuseOptions
) -> dict[str, Any]:
    """The victims probe through a quiet baseline, then while one flooder floods ``route``."""
    receiver_user, sender_users, flooder = cast.receiver, cast.senders, cast.flooder
    receiver_socket = await _open(stack.connect_url(receiver_user.access_token))
    senders = [await _open(stack.connect_url(u.access_token)) for u in sender_users]
    victims = Victims(senders, Listener(receiver_socket))
    tasks = [asyncio.create_task(victims.receiver.listen())]
    tasks += [asyncio.create_task(victims.read_answers(s)) for s in senders]
    stop = asyncio.Event()
    tasks.append(asyncio.create_task(victims.probe(receiver_user.username, stop)))
    quiet_started = time.monotonic()
    await asyncio.sleep(options.quiet_s)
    flood_started = time.monotonic()
    frames = [json.dumps(FLOOD_FRAMES[route](n)) for n in range(count)]
    done = asyncio.Event()
    flooding = asyncio.create_task(
        flood(stack.connect_url(flooder.access_token), frames, flood_started + options.window_s, done)
    )
    await asyncio.sleep(max(0.0, flood_started + options.window_s - time.monotonic()))
    flood_ended = time.monotonic()
    quiet = victims.latencies_ms(quiet_started, flood_started, flood_started)
    settled_s = await settle(victims, percentile(quiet, 0.5), options.settle_s)
    stop.set()
    await asyncio.sleep(1.0)  # the last probes land
    done.set()
    outcome = await flooding
    for task in tasks:
        task.cancel()
    for socket in [receiver_socket, *senders]:
        await socket.close()
    until = time.monotonic()
    flooded = victims.latencies_ms(flood_started, flood_ended, until)
    return {
        "route": route,
        "quiet_probes": len(quiet),
        "quiet_p50_ms": percentile(quiet, 0.5),
        "quiet_p99_ms": percentile(quiet, 0.99),
        "probes": len(flooded),
        "p50_ms": percentile(flooded, 0.5),
        "p99_ms": percentile(flooded, 0.99),
        "victim_errors": sum(flood_started <= at < until for at, _ in victims.errors),
        "flood_sent": outcome.sent,
        "flood_admitted": outcome.admitted,
        "flood_answers": outcome.answers,
        "flood_messages": outcome.messages,
        "flood_refused": outcome.refused,
        "flood_closed": outcome.closed,
        "flood_connections": outcome.connections,
        "flood_invocations": outcome.invocations(),
        "settled_s": settled_s,
    }


async def _open(url: str) -> ClientConnection:
    # Patient: a previous flood's backlog can still be slowing every handshake down.
    for _ in range(10):
        try:
            return await connect(url, open_timeout=60, max_size=2**22, ping_interval=None)
        except InvalidStatus:  # $connect failed under the load (500): reconnect, as clients do
            await asyncio.sleep(2.0)
    return await connect(url, open_timeout=60, max_size=2**22, ping_interval=None)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Variables the local stack's child process inherits, restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure(mode: str, floods: dict[str, int], options: AbuseOptions) -> list[dict[str, Any]]:
    """The floods one after another on one fresh stack (each its own stack: ``fresh_stacks``)."""
    budgets = config.budgets_off() if mode == "off" else {}
    with environment(budgets), running_stack(log_level="ERROR") as stack:
        if "sync" in floods:
            fill_history(stack, options.history)
        casts = {route: Cast.sign_up(stack, options.victims) for route in floods}
        return [
            {"mode": mode, **asyncio.run(scenario(stack, casts[route], route, count, options))}
            for route, count in floods.items()
        ]


def run(options: AbuseOptions, command: str, output: Path = OUTPUT) -> Report:
    groups = [{r: n} for r, n in options.floods.items()] if options.fresh_stacks else [options.floods]
    rows = [row for mode in ("off", "on") for floods in groups for row in measure(mode, floods, options)]
    report = Report("abuse", "Abuse: another user's latency while one user floods", machine.describe(command))
    table = Table(
        [
            "budgets",
            "route flooded",
            "flood frames sent",
            "admitted",
            "refused (rate_limited)",
            "flood connection closed",
            "flood invocations (reconnects' share)",
            "victim p50 quiet (ms)",
            "victim p99 quiet (ms)",
            "victim p50 flooded (ms)",
            "victim p99 flooded (ms)",
            "p99 vs quiet",
            "victim errors",
            "drained after (s)",
            "goal met",
        ]
    )
    for row in rows:
        table.add(
            "none" if row["mode"] == "off" else "per user (defaults)",
            row["route"],
            row["flood_sent"],
            row["flood_admitted"],
            row["flood_refused"],
            row["flood_closed"],
            f"{row['flood_invocations']} ({reconnect_share(row):.0%})",
            row["quiet_p50_ms"],
            row["quiet_p99_ms"],
            row["p50_ms"],
            row["p99_ms"],
            f"{row['p99_ms'] / row['quiet_p99_ms']:.1f}x",
            row["victim_errors"],
            row["settled_s"],
            ("yes" if goal_met(row) else "no") if row["mode"] == "on" else "-",
        )
    report.tables.append(
        (f"{options.victims} victims, one private message a second each; one flooder per route", table)
    )
    after = [row for row in rows if row["mode"] == "on"]
    met = [row["route"] for row in after if goal_met(row)]
    report.notes += [
        f"Goal: with budgets, a victim's p99 under each flood within {GOAL_FACTOR:.0f}x its quiet p99: "
        f"met for {', '.join(met) or 'none'} ({len(met)} of {len(after)} routes); "
        + "; ".join(
            f"{row['route']} {row['p99_ms'] / row['quiet_p99_ms']:.1f}x: "
            + ("met" if goal_met(row) else "not met")
            for row in after
        )
        + ".",
        f"Each row: {'a fresh local stack, ' if options.fresh_stacks else ''}"
        f"{options.quiet_s:.0f} s quiet, then the flood; victims' p50/p99 "
        f"over the probes sent in the {options.window_s:.0f} s from the flood's start (a probe that never "
        "arrived counts as the time until the end of the run).",
        f"The sync flood reads a history of at least {options.history} public messages: each admitted "
        f"sync of 500 posts a message frame per stored message (up to 500) and a 'synced' back "
        f"({sync_frames_per_admitted(after)}).",
        "'flood invocations': one per frame sent, and an authorizer, $connect and $disconnect per "
        "connection the flooder opened; the share in brackets is the reconnects'.",
        "The flooder sends without waiting for answers and reconnects each time the server closes its "
        "socket (DELETE @connections after 20 refusals), until all its frames are sent.",
        "'drained after': seconds after the window until new probes came back within 3x the quiet median "
        f"(at most {options.settle_s:.0f}).",
        "Everything (emulator, handlers, moto, the clients) shares this machine's 2 cores, so a flood "
        "costs the victims CPU here; on AWS each invocation has its own Lambda instance.",
    ]
    report.data = {"rows": rows, "options": {"victims": options.victims, "window_s": options.window_s}}
    report.write(output)
    return report


def goal_met(row: dict[str, Any]) -> bool:
    return bool(row["p99_ms"] <= GOAL_FACTOR * row["quiet_p99_ms"])


def reconnect_share(row: dict[str, Any]) -> float:
    """The share of the flood's invocations that its handshakes and closes caused."""
    return float(3 * row["flood_connections"] / max(1, row["flood_invocations"]))


def sync_frames_per_admitted(rows: list[dict[str, Any]]) -> str:
    """What the admitted syncs of the budgeted run cost in posts, as measured."""
    sync = next((row for row in rows if row["route"] == "sync"), None)
    if sync is None or not sync["flood_admitted"]:
        return "no sync admitted"
    posts = sync["flood_messages"] + sync["flood_admitted"]
    return f"{sync['flood_admitted']} admitted, {posts / sync['flood_admitted']:.0f} posts each, as measured"


QUICK = AbuseOptions(
    victims=2,
    quiet_s=2.0,
    window_s=6.0,  # long enough for the refusals to come back on a loaded machine
    settle_s=3.0,
    history=20,
    fresh_stacks=False,
    floods={"sendmessage": 60, "sync": 10, "who": 60, "ping": 60},
)


def main(*, quick: bool, output: Path, command: str) -> Report:
    return run(QUICK if quick else AbuseOptions(), command, output)
