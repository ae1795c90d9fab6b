"""Benchmark 6: what presence costs in posts, with and without the presence grace.

API Gateway closes every connection after 2 hours and clients reconnect at once. Without a grace,
each such recycle tells every other connection twice (offline, then online): N users cost about
2·N·(N-1) posts every 2 hours. With the grace, the reconnect lands before the delayed check and
nobody is told anything. Also measured: N users coming online at once (at least N·(N-1)/2 posts
whatever the grace), and one user leaving for good (still announced, once the grace has passed).

The real $connect, $disconnect and presence-check handlers run against moto (DynamoDB, and the
presence queue on SQS, which holds each check back for its DelaySeconds in real time) and the
management-API double, which counts every post and every GET @connections.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chat import config
from chat.handlers import connect, disconnect, presence

from benchmarks import machine
from benchmarks.aws import MotoProcess, apply_environment, handler_environment
from benchmarks.fanout import EVENTS, lambda_context
from benchmarks.management_double import ManagementDoubleProcess
from benchmarks.report import OUTPUT, Report, Table
from local_stack.queues import create_queues, sqs_event

# Connects and closes in flight at once: "at once", as Lambdas run side by side (bounded, so
# moto, which answers one request at a time, is not what is measured).
PARALLEL = 4
PRICE_PER_MILLION_MESSAGES = 1.00  # API Gateway WebSocket, us-east-1 (see benchmarks/cost.py)
CYCLE_S = 2 * 3600  # API Gateway's longest connection
RECYCLE = "each user recycles their only connection"


@dataclass(frozen=True)
class PresenceOptions:
    users: int
    grace_s: int
    # Every user is online, but only the last ``sample`` act while posts are counted (the others
    # are written straight into the tables): the rest is extrapolated, as the fan-out benchmark does
    # for its sequential loop. Without a grace each of them posts to everyone.
    sample: int
    # With the grace a recycle posts nothing: more users are cheap to measure.
    grace_sample: int


@dataclass(frozen=True)
class Outcome:
    scenario: str
    grace_s: int
    users: int
    measured: int  # how many users acted while the posts were counted
    posts: int
    posts_for_all: float
    lookups: int
    checks: int
    seconds: float


def event(name: str, username: str, connection: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    raw["requestContext"]["connectionId"] = connection
    raw["requestContext"]["authorizer"] = {"principalId": username, "username": username}
    return raw


def user(n: int) -> str:
    return f"user{n:05d}"


class PresenceBench:
    def __init__(self) -> None:
        self.double = ManagementDoubleProcess()
        self.moto = MotoProcess()
        self.sqs = self.moto.client("sqs")
        self.queues = self.moto.resources.presence_queues
        self.generation: dict[int, int] = {}
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL)

    def close(self) -> None:
        self.pool.shutdown()
        self.moto.stop()
        self.double.stop()

    def use_grace(self, seconds: int) -> None:
        """The handlers with this grace, and a queue of their own (no check left from before)."""
        self.queues = create_queues(self.sqs, name=f"presence-checks-{seconds}s-{time.monotonic_ns()}")
        overrides = {config.PRESENCE_GRACE_SECONDS: str(seconds), config.PRESENCE_QUEUE_URL: self.queues.url}
        apply_environment(handler_environment(self.moto, self.double.endpoint, **overrides))

    def connection(self, n: int) -> str:
        return f"g{self.generation.get(n, 0):03d}u{n:05d}x="

    def register(self, users: range) -> None:
        """Users already online: their connection rows and presence items, written straight in."""
        dynamodb = self.moto.client("dynamodb")
        expires = {"N": str(int(time.time()) + 7200)}
        rows: dict[str, Callable[[int], dict[str, Any]]] = {
            "Connections": lambda n: {"connectionId": {"S": self.connection(n)}, "username": {"S": user(n)}},
            "Presence": lambda n: {"username": {"S": user(n)}, "conns": {"SS": [self.connection(n)]}},
        }
        for table, item in rows.items():
            for start in range(users.start, users.stop, 25):
                puts = [
                    {"PutRequest": {"Item": {**item(n), "connectedAt": {"N": "0"}, "expiresAt": expires}}}
                    for n in range(start, min(start + 25, users.stop))
                ]
                dynamodb.batch_write_item(RequestItems={self.moto.table(table): puts})

    def connect_all(self, users: range) -> None:
        def one(n: int) -> None:
            connect.handler(event("connect", user(n), self.connection(n)), lambda_context())

        list(self.pool.map(one, users))

    def recycle(self, users: range) -> None:
        """Each user's only connection closes (the 2-hour limit) and a new one opens at once."""

        def one(n: int) -> None:
            disconnect.handler(event("disconnect", user(n), self.connection(n)), lambda_context())
            self.generation[n] = self.generation.get(n, 0) + 1
            connect.handler(event("connect", user(n), self.connection(n)), lambda_context())

        list(self.pool.map(one, users))

    def leave(self, n: int) -> None:
        disconnect.handler(event("disconnect", user(n), self.connection(n)), lambda_context())

    def run_checks(self) -> int:
        """Deliver every check that is due to the real worker, as the queue's trigger does."""
        delivered = 0
        receive = {"QueueUrl": self.queues.url, "MaxNumberOfMessages": 10}
        while messages := self.sqs.receive_message(**receive).get("Messages", []):
            batch = sqs_event(messages, queue_arn=self.queues.arn, region="us-east-1")
            presence.handler(batch, lambda_context())
            self.sqs.delete_message_batch(
                QueueUrl=self.queues.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            delivered += len(messages)
        return delivered

    def measure(self, scenario: str, grace_s: int, users: int, measured: int, action: Callable[[], None], *,
                wait_s: float, scale: float) -> Outcome:  # fmt: skip
        """Posts and GETs from ``action`` and from the checks it scheduled (after ``wait_s``);
        ``scale`` turns the posts measured into the posts for all ``users``."""
        self.double.reset()
        started = time.monotonic()
        print(f"{scenario}, grace {grace_s} s, {measured} of {users} users", file=sys.stderr, flush=True)
        action()
        time.sleep(wait_s)
        checks = self.run_checks()
        seconds = time.monotonic() - started
        stats = self.double.stats()
        posts = int(stats["posts"])
        return Outcome(
            scenario, grace_s, users, measured, posts, posts * scale, stats["lookups"], checks, seconds
        )


def run(options: PresenceOptions, command: str, output: Path = OUTPUT) -> Report:
    n, grace, k = options.users, options.grace_s, min(options.sample, options.users)
    first, last = range(n - k), range(n - k, n)
    recyclers = range(n - min(options.grace_sample, n), n)
    bench = PresenceBench()
    outcomes: list[Outcome] = []
    try:
        bench.use_grace(0)
        bench.register(first)
        # The last k arrivals find n - k ... n - 1 connections (more when they arrive side by side):
        # the ratio of what they caused to that one-at-a-time count is applied to N(N-1)/2.
        one_at_a_time = sum(range(n - k, n))
        online = bench.measure("N users come online at once", 0, n, k, lambda: bench.connect_all(last),
                               wait_s=0, scale=n * (n - 1) / 2 / max(1, one_at_a_time))  # fmt: skip
        # Without a grace each recycle costs the same, about 2(N-1) posts: k stand for all N. (Its
        # checks, 10 s later, only look for closes whose writes failed: none here.)
        before = bench.measure(RECYCLE, 0, n, k, lambda: bench.recycle(last), wait_s=0, scale=n / k)
        bench.use_grace(grace)
        after = bench.measure(RECYCLE, grace, n, len(recyclers), lambda: bench.recycle(recyclers),
                              wait_s=grace + 1.5, scale=n / len(recyclers))  # fmt: skip
        leaves = bench.measure("one user leaves for good", grace, n, 1, lambda: bench.leave(n - 1),
                               wait_s=grace + 1.5, scale=1)  # fmt: skip
        outcomes = [online, before, after, leaves]
    finally:
        bench.close()
    return write_report(outcomes, options, command, output)


def write_report(outcomes: list[Outcome], options: PresenceOptions, command: str, output: Path) -> Report:
    report = Report("presence", "Presence: posts with and without the grace", machine.describe(command))
    table = Table(
        [
            "scenario",
            "grace (s)",
            "users (N)",
            "users measured",
            "posts measured",
            "posts for all N",
            "posts per user measured",
            "GET @connections",
            "checks run",
            "wall time (s)",
        ]
    )
    for o in outcomes:
        extrapolated = o.measured not in (1, o.users)
        all_posts = f"{o.posts_for_all:,.0f} (extrapolated)" if extrapolated else o.posts_for_all
        per_user = o.posts / max(1, o.measured)
        counts = (o.posts, all_posts, per_user, o.lookups, o.checks, o.seconds)
        table.add(o.scenario, o.grace_s, o.users, o.measured, *counts)
    report.tables.append((f"N = {options.users:,} users, one connection each", table))
    report.tables.append(("Every 2 hours (API Gateway recycles every connection)", projection(outcomes)))
    report.notes += [
        "Posts are counted at the management-API double: every POST @connections, i.e. every presence "
        "frame sent to some connection. A new connection hears nothing itself ($connect cannot be "
        "posted to).",
        f"Connects and closes run {PARALLEL} at a time. A recycle is the close of a user's only connection "
        "followed at once by a new one, as clients do when API Gateway ends a connection at 2 hours.",
        "Without the grace (0 s, the behaviour before it existed) a recycle costs about 2·(N-1) posts: "
        "offline and online to everyone else. Measured over the last users shown (the others written "
        "straight into the tables, online) and extrapolated to N. Coming online at once: the last "
        "arrivals' posts over what they would cost one at a time, applied to N(N-1)/2 (every pair hears "
        "of each other at least once).",
        "With the grace, each close queues one delayed check (one SQS message, one presence-check "
        "invocation reading one item); the reconnect cancels the pending offline, so the check finds the "
        "user online and posts nothing. A user who does not come back is announced once, after the grace.",
        f"Projection: posts per 2-hour cycle at ${PRICE_PER_MILLION_MESSAGES:.2f} per million API Gateway "
        "messages, and the average post rate over the cycle (the account's quota is 10,000 a second, "
        "shared with every other management call); at 10 x N, posts per recycling user scale with N - 1.",
    ]
    report.data = {"outcomes": [asdict(o) for o in outcomes], "options": asdict(options)}
    report.write(output)
    return report


def projection(outcomes: list[Outcome]) -> Table:
    """Posts per 2-hour cycle from the recycles measured, at N and at 10 x N."""
    table = Table(["users", "grace (s)", "posts per cycle", "$ per cycle", "posts/s over the cycle"])
    recycles = [o for o in outcomes if o.scenario == RECYCLE]
    for scale in (1, 10):
        for o in recycles:
            users = o.users * scale
            posts = o.posts_for_all / o.users * (users - 1) / max(1, o.users - 1) * users
            table.add(
                f"{users:,}", o.grace_s, posts, posts / 1e6 * PRICE_PER_MILLION_MESSAGES, posts / CYCLE_S
            )
    return table


def main(*, quick: bool, output: Path, command: str) -> Report:
    quick_options = PresenceOptions(users=12, grace_s=1, sample=6, grace_sample=12)
    options = quick_options if quick else PresenceOptions(users=1000, grace_s=15, sample=50, grace_sample=200)
    return run(options, command, output)
