"""Benchmark 6: what presence costs in posts, with and without the presence grace.

API Gateway closes every connection after 2 hours and clients reconnect at once. Without a grace,
each such recycle tells every other connection twice (offline, then online): N users cost about
2·N·(N-1) posts every 2 hours. With the grace, the reconnect lands before the delayed check and
nobody is told anything. Also measured: N users coming online at once (N·(N-1)/2 posts whatever
the grace), and one user leaving for good (still announced, once the grace has passed).

The real $connect, $disconnect and presence-check handlers run against moto (DynamoDB and the
presence queue on SQS, which holds each check back for its DelaySeconds in real time) and the
management-API double, which counts every post and every GET @connections.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat import config
from chat.handlers import connect, disconnect, presence

from benchmarks import machine
from benchmarks.aws import MotoProcess, apply_environment, handler_environment
from benchmarks.fanout import EVENTS, lambda_context
from benchmarks.management_double import ManagementDoubleProcess
from benchmarks.report import OUTPUT, Report, Table
from local_stack.queues import sqs_event

# Connects and closes in flight at once: "at once", as many Lambdas run side by side.
PARALLEL = 8
PRICE_PER_MILLION_MESSAGES = 1.00  # API Gateway WebSocket, us-east-1 (see benchmarks/cost.py)
CYCLE_S = 2 * 3600  # API Gateway's longest connection


@dataclass(frozen=True)
class PresenceOptions:
    users: int
    grace_s: int
    # Recycles measured without the grace (each costs the same 2·(N-1) posts; the rest are
    # extrapolated, as the fan-out benchmark does for its sequential loop).
    sample: int


@dataclass(frozen=True)
class Outcome:
    scenario: str
    grace_s: int
    users: int
    measured: int  # how many users the posts were measured over
    posts: int
    lookups: int
    checks: int
    seconds: float

    @property
    def posts_for_all(self) -> float:
        return self.posts * self.users / self.measured if self.measured else 0.0


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
        self.generation = 0
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL)

    def close(self) -> None:
        self.pool.shutdown()
        self.moto.stop()
        self.double.stop()

    def use_grace(self, seconds: int) -> None:
        env = handler_environment(
            self.moto, self.double.endpoint, **{config.PRESENCE_GRACE_SECONDS: str(seconds)}
        )
        apply_environment(env)

    def connection(self, n: int) -> str:
        return f"b{self.generation:03d}u{n:05d}x="

    def connect_all(self, users: range) -> None:
        list(
            self.pool.map(
                lambda n: connect.handler(event("connect", user(n), self.connection(n)), lambda_context()),
                users,
            )
        )

    def recycle(self, users: range) -> None:
        """Each user's only connection closes (the 2-hour limit) and a new one opens at once."""
        old, self.generation = self.generation, self.generation + 1

        def one(n: int) -> None:
            closing = f"b{old:03d}u{n:05d}x="
            disconnect.handler(event("disconnect", user(n), closing), lambda_context())
            connect.handler(event("connect", user(n), self.connection(n)), lambda_context())

        list(self.pool.map(one, users))

    def run_checks(self) -> int:
        """Deliver every check that is due to the real worker, as the queue's trigger does."""
        delivered = 0
        while messages := self.sqs.receive_message(QueueUrl=self.queues.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            presence.handler(
                sqs_event(messages, queue_arn=self.queues.arn, region="us-east-1"), lambda_context()
            )
            self.sqs.delete_message_batch(
                QueueUrl=self.queues.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            delivered += len(messages)
        return delivered

    def measure(
        self, scenario: str, grace_s: int, users: int, measured: int, action: Any, *, wait_s: float
    ) -> Outcome:
        """Posts and GETs from ``action`` and from the checks it scheduled (after ``wait_s``)."""
        self.double.reset()
        started = time.monotonic()
        action()
        time.sleep(wait_s)
        checks = self.run_checks()
        seconds = time.monotonic() - started
        stats = self.double.stats()
        return Outcome(scenario, grace_s, users, measured, stats["posts"], stats["lookups"], checks, seconds)


def run(options: PresenceOptions, command: str, output: Path = OUTPUT) -> Report:
    n, grace = options.users, options.grace_s
    bench = PresenceBench()
    outcomes: list[Outcome] = []
    try:
        bench.use_grace(0)
        everyone = range(n)
        outcomes.append(
            bench.measure(
                "N users come online at once", 0, n, n, lambda: bench.connect_all(everyone), wait_s=0
            )
        )
        sample = range(min(options.sample, n))
        # Without a grace the checks only look for failed closes, 10 s later (none here).
        outcomes.append(
            bench.measure(
                "each user recycles their only connection",
                0,
                n,
                len(sample),
                lambda: bench.recycle(sample),
                wait_s=0,
            )
        )
        bench.sqs.purge_queue(QueueUrl=bench.queues.url)
        bench.use_grace(grace)
        outcomes.append(
            bench.measure(
                "each user recycles their only connection",
                grace,
                n,
                n,
                lambda: bench.recycle(everyone),
                wait_s=grace + 1.5,
            )
        )
        leaver = n - 1
        outcomes.append(
            bench.measure(
                "one user leaves for good",
                grace,
                n,
                1,
                lambda: disconnect.handler(
                    event("disconnect", user(leaver), bench.connection(leaver)), lambda_context()
                ),
                wait_s=grace + 1.5,
            )
        )
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
            "posts per user",
            "GET @connections",
            "checks run",
            "wall time (s)",
        ]
    )
    for o in outcomes:
        all_posts = o.posts_for_all if o.measured < o.users and o.measured > 1 else o.posts
        label = f"{all_posts:,.0f} (extrapolated)" if o.measured not in (1, o.users) else all_posts
        table.add(
            o.scenario,
            o.grace_s,
            o.users,
            o.measured,
            o.posts,
            label,
            o.posts / max(1, o.measured),
            o.lookups,
            o.checks,
            o.seconds,
        )
    report.tables.append((f"N = {options.users:,} users, one connection each", table))
    report.tables.append(("Every 2 hours (API Gateway recycles every connection)", projection(outcomes)))
    report.notes += [
        "Posts are counted at the management-API double: every POST @connections, i.e. every presence "
        "frame sent to some connection. The new connection itself hears nothing ($connect cannot be "
        "posted to).",
        f"Connects and closes run {PARALLEL} at a time. A recycle is the close of a user's only connection "
        "followed at once by a new one, as clients do when API Gateway ends a connection at 2 hours.",
        "Without the grace (0 s, the behaviour before it existed), a recycle costs 2·(N-1) posts: offline "
        "and online to everyone else. Measured over the users shown and extrapolated to N.",
        "With the grace, each close queues one delayed check (one SQS message, one presence-check "
        "invocation reading one item); the reconnect cancels the pending offline, so the check finds the "
        "user online and posts nothing. A user who does not come back is announced once, after the grace.",
        f"Projection: posts per 2-hour cycle at ${PRICE_PER_MILLION_MESSAGES:.2f} per million API Gateway "
        "messages, and the average post rate over the cycle (the account's quota is 10,000 a second, shared "
        "with every other management call).",
    ]
    report.data = {
        "outcomes": [o.__dict__ | {"posts_for_all": o.posts_for_all} for o in outcomes],
        "options": options.__dict__,
    }
    report.write(output)
    return report


def projection(outcomes: list[Outcome]) -> Table:
    """Posts per 2-hour cycle, from the measured posts per recycling user, at N and at 10 x N."""
    table = Table(["users", "grace (s)", "posts per cycle", "$ per cycle", "posts/s over the cycle"])
    recycles = [o for o in outcomes if o.scenario.startswith("each user recycles")]
    for scale in (1, 10):
        for o in recycles:
            users = o.users * scale
            per_user = o.posts / max(1, o.measured) * (users - 1) / max(1, o.users - 1)
            posts = per_user * users
            table.add(
                f"{users:,}", o.grace_s, posts, posts / 1e6 * PRICE_PER_MILLION_MESSAGES, posts / CYCLE_S
            )
    return table


def main(*, quick: bool, output: Path, command: str) -> Report:
    options = PresenceOptions(users=12, grace_s=1, sample=12) if quick else PresenceOptions(1000, 15, 50)
    return run(options, command, output)
