"""Benchmark 1: fan-out of one public message by the real sendmessage code to N connections.

The connection rows are written straight into moto's Connections table (no sockets); the management
API is the fast double (``management_double.py``) answering after an injected latency; large
audiences go to worker invocations through an Invoke API whose worker processes run the real
fan-out handler (``lambda_pool.py``). Two baselines: AWS's own Python example's design (read the
connections, then a for-loop of boto3 ``post_to_connection`` calls, one at a time), and what a
competent user would write instead (the same calls on a thread pool, boto3's connection pool as
large as the thread count).

Each process's CPU time is read before and after, so the run also says what a post costs.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from chat import config
from chat.handlers import sendmessage
from chat.notifier import Notifier

from benchmarks import machine
from benchmarks.aws import MotoProcess, apply_environment, handler_environment
from benchmarks.lambda_pool import LambdaPool
from benchmarks.loadgen import load
from benchmarks.management_double import ManagementDoubleProcess
from benchmarks.report import OUTPUT, Report, Table
from local_stack.lambdas import LambdaContext

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "events"
SENDER = "sender"
# API Gateway's default account quota for @connections calls (and every other API Gateway call).
ACCOUNT_QUOTA_PER_S = 10_000
GOAL_PER_S = 8_000
# One worker process alone (FANOUT_WORKERS posts in flight): the rate a Lambda worker must sustain.
SINGLE_WORKER_GOAL_PER_S = 4_000
SEQUENTIAL = "sequential loop (AWS example)"
WAIT_LIMIT_S = 120.0


@dataclass
class FanoutOptions:
    sizes: tuple[int, ...] = (1_000, 10_000)
    latency_s: float = 0.02
    quota_per_s: float = ACCOUNT_QUOTA_PER_S
    # A second run of the largest size under a quota below what the fan-out reaches: 429s, retried.
    throttled_quota_per_s: float = 5_000
    chunk_size: int = 1_000
    lanes: int = 192  # FANOUT_WORKERS: posts in flight per invocation
    processes: int = 3  # worker sandboxes running at once
    baseline_sample: int = 1_000
    threaded_sample: int = 2_000
    # Threads for the thread-pool baseline: 32 spent the least CPU per post of 32, 64 and 128 here.
    threads: int = 32
    double_requests: int = 20_000
    single_worker_posts: int = 3_000


@dataclass
class Outcome:
    """One fan-out as measured: who got what, when, and the CPU each process spent."""

    label: str
    audience: int
    seconds: float
    handler_seconds: float
    received: dict[str, int]
    throttled: int
    cpu: dict[str, float] = field(default_factory=dict)
    invocations: int = 0
    of_audience: int = 0  # the N this was a sample of (baseline), else the audience itself

    @property
    def per_second(self) -> float:
        return self.audience / self.seconds

    @property
    def lost(self) -> int:
        return self.audience - sum(1 for count in self.received.values() if count >= 1)

    @property
    def duplicated(self) -> int:
        return sum(1 for count in self.received.values() if count > 1)

    def cpu_per_post_us(self, part: str | None = None) -> float:
        total = self.cpu[part] if part else sum(self.cpu.values())
        return total / self.audience * 1e6


def connection_id(n: int) -> str:
    """API Gateway's ids are 16 characters ending in '='."""
    return f"bench{n:010d}="


def message_event(text: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((EVENTS / "message.json").read_text())
    raw["requestContext"]["connectionId"] = connection_id(0)
    raw["requestContext"]["authorizer"] = {"principalId": SENDER, "username": SENDER}
    raw["requestContext"]["messageId"] = f"frame-{time.monotonic_ns()}="
    raw["body"] = json.dumps({"action": "sendmessage", "text": text})
    return raw


def lambda_context() -> LambdaContext:
    return LambdaContext(
        function_name="chat-SendMessage",
        memory_limit_in_mb=1024,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:chat-SendMessage",
        aws_request_id=f"bench-{time.monotonic_ns()}",
        deadline=time.monotonic() + 30,
    )


def register(moto: MotoProcess, first: int, last: int) -> None:
    """Connection rows ``first``..``last - 1``, written straight into the table (25 per batch)."""
    dynamodb = moto.client("dynamodb")
    table = moto.table("Connections")
    now = int(time.time())
    for start in range(first, last, 25):
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "connectionId": {"S": connection_id(n)},
                        "username": {"S": SENDER if n == 0 else f"user{n % 997:03d}"},
                        "connectedAt": {"N": str(now)},
                        "expiresAt": {"N": str(now + 7200)},
                    }
                }
            }
            for n in range(start, min(start + 25, last))
        ]
        dynamodb.batch_write_item(RequestItems={table: items})


class FanoutBench:
    def __init__(self, options: FanoutOptions) -> None:
        self.options = options
        self.double = ManagementDoubleProcess()
        self.moto = MotoProcess()
        env = handler_environment(
            self.moto,
            self.double.endpoint,
            **{
                config.FANOUT_WORKERS: str(options.lanes),
                config.FANOUT_CHUNK_SIZE: str(options.chunk_size),
                **config.budgets_off(),
                config.FANOUT_FUNCTION_NAME: "chat-fanout-worker",
            },
        )
        self.pool = LambdaPool(options.processes, env, self.double.endpoint)
        apply_environment({**env, "AWS_ENDPOINT_URL_LAMBDA": self.pool.endpoint})
        self.registered = 1
        register(self.moto, 0, 1)

    def close(self) -> None:
        self.pool.stop()
        self.moto.stop()
        self.double.stop()

    # ---- the double alone ----------------------------------------------------------------------

    def double_alone(self) -> Table:
        """The double under a load generator: its rate and CPU per request, with and without latency."""
        table = Table(
            ["latency (ms)", "connections", "requests", "requests/s", "double CPU per request (µs)"]
        )
        for latency_s, connections in ((0.0, 64), (self.options.latency_s, 256)):
            self.double.reset(latency_s=latency_s)
            before = machine.cpu_seconds(self.double.process.pid or 0)
            seconds = load(self.double.port, self.options.double_requests, connections)
            cpu = machine.cpu_seconds(self.double.process.pid or 0) - before
            requests = self.options.double_requests
            table.add(latency_s * 1000, connections, requests, requests / seconds, cpu / requests * 1e6)
        return table

    # ---- the real handler ----------------------------------------------------------------------

    def warm_up(self) -> None:
        """One message while only the sender is connected: imports, clients, connections made."""
        self.double.reset()
        sendmessage.handler(message_event("warm-up"), lambda_context())

    def grow_to(self, audience: int) -> None:
        register(self.moto, self.registered, audience)
        self.registered = max(self.registered, audience)

    def fan_out(self, audience: int, *, quota_per_s: float, label: str) -> Outcome:
        self.grow_to(audience)
        self.double.reset(latency_s=self.options.latency_s, quota_per_s=quota_per_s)
        self.pool.take_invocations()
        pids = {"double": self.double.process.pid or 0, "moto": self.moto.pid}
        cpu_before = {name: machine.cpu_seconds(pid) for name, pid in pids.items()}
        sender_cpu = time.process_time()
        started = time.monotonic()
        sendmessage.handler(message_event(f"to {audience}"), lambda_context())
        handler_seconds = time.monotonic() - started
        sender_cpu = time.process_time() - sender_cpu
        invocations = self.pool.take_invocations()
        runs = self.pool.collect(invocations, timeout=WAIT_LIMIT_S)
        stats = self.double.stats()
        cpu = {name: machine.cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu["sender"] = sender_cpu
        cpu["workers"] = sum(run.cpu_s for run in runs)
        return Outcome(
            label=label,
            audience=audience,
            # Nothing arrived (the handler failed): the time until the run was given up, not a negative.
            seconds=(stats["last_message_at"] or time.monotonic()) - started,
            handler_seconds=handler_seconds,
            received={connection_id(n): stats["messages"].get(connection_id(n), 0) for n in range(audience)},
            throttled=stats["throttled"],
            cpu=cpu,
            invocations=len(runs),
        )

    # ---- the baseline --------------------------------------------------------------------------

    def baseline(self, audience: int, sample: int, *, threads: int = 0) -> Outcome:
        """Scan the connections, then post_to_connection to ``sample`` of them: one at a time (AWS's
        example), or on a pool of ``threads`` threads sharing one client."""
        self.grow_to(audience)
        self.double.reset(latency_s=self.options.latency_s)
        dynamodb = self.moto.client("dynamodb")
        gateway = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=self.double.endpoint,
            region_name="us-east-1",
            config=Config(max_pool_connections=max(threads, 10)),  # botocore's default is 10
        )
        frame = json.dumps({"type": "message", "text": "boto3"}, separators=(",", ":")).encode()

        def post(target: str, data: bytes = frame) -> None:
            gateway.post_to_connection(ConnectionId=target, Data=data)

        post("warm-up", b"{}")  # build the client's pipeline
        pool = ThreadPoolExecutor(threads) if threads else None
        if pool is not None:  # start the threads and open their connections before timing
            list(pool.map(post, [f"warm{n}" for n in range(threads)], [b"{}"] * threads))
        self.double.reset(latency_s=self.options.latency_s)
        cpu = time.process_time()
        started = time.monotonic()
        ids: list[str] = []
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.moto.table("Connections"), ProjectionExpression="connectionId"
        ):
            ids += [item["connectionId"]["S"] for item in page["Items"]]
        ids = sorted(ids)[:sample]
        if pool is None:
            for target in ids:
                post(target)
        else:
            with pool:
                list(pool.map(post, ids))
        stats = self.double.stats()
        return Outcome(
            label=f"boto3 on {threads} threads" if threads else SEQUENTIAL,
            audience=len(ids),
            seconds=stats["last_message_at"] - started,
            handler_seconds=time.monotonic() - started,
            received={target: stats["messages"].get(target, 0) for target in ids},
            throttled=stats["throttled"],
            cpu={"sender": time.process_time() - cpu},
            of_audience=audience,
        )

    # ---- one worker alone ----------------------------------------------------------------------

    def single_worker(self) -> tuple[float, float]:
        """What one process posts per second, and the CPU per post, with the notifier alone."""
        posts = self.options.single_worker_posts
        notifier = Notifier(
            self.double.endpoint,
            workers=self.options.lanes,
            region="us-east-1",
            posts_per_connection=config.FANOUT_POSTS_PER_CONNECTION,
        )
        frame = '{"type":"message","text":"one worker"}'
        notifier.send_many([f"warm{n}=" for n in range(self.options.lanes)], frame)
        self.double.reset(latency_s=self.options.latency_s)
        cpu, started = time.process_time(), time.monotonic()
        report = notifier.send_many([f"solo{n:06d}=" for n in range(posts)], frame)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        assert report.delivered == posts, report
        return posts / seconds, cpu / posts * 1e6


def run(options: FanoutOptions, command: str, output: Path = OUTPUT) -> Report:
    bench = FanoutBench(options)
    try:
        double_table = bench.double_alone()
        bench.warm_up()
        ours = [
            bench.fan_out(n, quota_per_s=options.quota_per_s, label="this project") for n in options.sizes
        ]
        largest = max(options.sizes)
        throttled = bench.fan_out(
            largest, quota_per_s=options.throttled_quota_per_s, label="this project, low quota"
        )
        baselines = [bench.baseline(n, min(n, options.baseline_sample)) for n in options.sizes]
        threaded = [
            bench.baseline(n, min(n, options.threaded_sample), threads=options.threads) for n in options.sizes
        ]
        solo_rate, solo_cpu_us = bench.single_worker()
    finally:
        bench.close()
    report = build_report(
        options, command, double_table, ours, throttled, baselines, threaded, solo_rate, solo_cpu_us
    )
    chart(ours, baselines, threaded, output / "fanout.png")
    report.charts.append("fanout.png")
    report.write(output)
    return report


def build_report(
    options: FanoutOptions,
    command: str,
    double_table: Table,
    ours: list[Outcome],
    throttled: Outcome,
    baselines: list[Outcome],
    threaded: list[Outcome],
    solo_rate: float,
    solo_cpu_us: float,
) -> Report:
    report = Report("fanout", "Fan-out of one public message", machine.describe(command))
    results = Table(
        [
            "N",
            "design",
            "posts measured",
            "wall time (s)",
            "posts/s",
            "vs baseline",
            "sender returned (s)",
            "worker invocations",
            "429s retried",
            "lost",
            "duplicated",
        ]
    )
    for outcome, baseline, pooled in zip(ours, baselines, threaded, strict=True):
        for sample in (baseline, pooled):
            extrapolated = sample.audience < outcome.audience
            seconds = sample.seconds * outcome.audience / sample.audience
            results.add(
                outcome.audience,
                sample.label,
                sample.audience,
                f"{seconds:,.1f}" + (" (extrapolated)" if extrapolated else ""),
                sample.per_second,
                f"{sample.per_second / baseline.per_second:,.1f}x",
                "",
                0,
                sample.throttled,
                sample.lost,
                sample.duplicated,
            )
        results.add(
            outcome.audience,
            outcome.label,
            outcome.audience,
            outcome.seconds,
            outcome.per_second,
            f"{outcome.per_second / baseline.per_second:,.1f}x",
            outcome.handler_seconds,
            outcome.invocations,
            outcome.throttled,
            outcome.lost,
            outcome.duplicated,
        )
    results.add(
        throttled.audience,
        f"{throttled.label} ({options.throttled_quota_per_s:,.0f}/s)",
        throttled.audience,
        throttled.seconds,
        throttled.per_second,
        "",
        throttled.handler_seconds,
        throttled.invocations,
        throttled.throttled,
        throttled.lost,
        throttled.duplicated,
    )
    report.tables.append(
        (f"Posts per second, management API latency {options.latency_s * 1000:.0f} ms", results)
    )
    report.tables.append(
        ("Where the CPU goes (µs of CPU per post, all processes)", cpu_table(ours, [*baselines, *threaded]))
    )
    report.tables.append(("The management-API double alone, under a load generator", double_table))
    largest = max(ours, key=lambda o: o.audience)
    report.notes += projection_notes(options, largest, solo_rate, solo_cpu_us, threaded)
    report.notes += [
        f"Settings: FANOUT_CHUNK_SIZE={options.chunk_size}, FANOUT_WORKERS={options.lanes} posts in flight "
        f"per invocation, {options.processes} worker processes, quota {options.quota_per_s:,.0f} requests/s "
        "(token bucket).",
        "Wall time: from invoking the sendmessage handler to the last message post received by the "
        "double. 'sender returned': when the sendmessage invocation finished (its own chunk posted, the "
        "rest queued).",
        f"Baselines at N > {options.baseline_sample:,} (sequential) and {options.threaded_sample:,} "
        f"(threads): that many posts were timed and the time extrapolated to N (neither rate depends on "
        f"N). Thread pool: a ThreadPoolExecutor of {options.threads} threads sharing one boto3 client "
        f"with max_pool_connections={options.threads}.",
        "Lost / duplicated: connections that got no message frame / more than one (must both be 0).",
    ]
    report.data = {
        "outcomes": [_summary(o) for o in [*ours, throttled, *baselines, *threaded]],
        "single_worker": {"posts_per_s": solo_rate, "cpu_us_per_post": solo_cpu_us},
    }
    return report


def cpu_table(ours: list[Outcome], baselines: list[Outcome]) -> Table:
    parts = ["sender", "workers", "double", "moto"]
    table = Table(["N", "design", *parts, "total", "posts/s 2 cores could sustain"])
    for outcome in [*baselines, *ours]:
        cells = [outcome.cpu_per_post_us(p) if p in outcome.cpu else "" for p in parts]
        total = outcome.cpu_per_post_us()
        table.add(outcome.of_audience or outcome.audience, outcome.label, *cells, total, 2 / (total / 1e6))
    return table


def projection_notes(
    options: FanoutOptions, largest: Outcome, solo_rate: float, solo_cpu_us: float, threaded: list[Outcome]
) -> list[str]:
    invocations = math.ceil(largest.audience / options.chunk_size)
    per_worker = min(options.lanes / options.latency_s, 1e6 / solo_cpu_us)
    projected = min(ACCOUNT_QUOTA_PER_S, invocations * per_worker)
    solo_verdict = "goal met" if solo_rate >= SINGLE_WORKER_GOAL_PER_S else "goal NOT met"
    best_threaded = max(threaded, key=lambda o: o.per_second)
    solo = (
        f"One worker alone (this CPU, one process, {options.lanes} in flight, "
        f"{options.latency_s * 1000:.0f} ms latency): {solo_rate:,.0f} posts/s at {solo_cpu_us:,.0f} µs "
        f"of CPU per post ({solo_verdict}: at least {SINGLE_WORKER_GOAL_PER_S:,}). boto3 on "
        f"{options.threads} threads in one process: {best_threaded.per_second:,.0f} posts/s at "
        f"{best_threaded.cpu_per_post_us():,.0f} µs of CPU per post."
    )
    if largest.lost:
        failed = (
            f"N = {largest.audience:,}: the run failed, {largest.lost:,} connections got nothing (the "
            "handler's error is in the benchmark's log)."
        )
        return [failed, solo]
    verdict = (
        f"Goal met here: {largest.per_second:,.0f} posts/s at N = {largest.audience:,} (goal {GOAL_PER_S:,})."
        if largest.per_second >= GOAL_PER_S
        else f"Goal not met on this machine: {largest.per_second:,.0f} posts/s at N = {largest.audience:,} "
        f"is {largest.per_second / GOAL_PER_S:.0%} of {GOAL_PER_S:,}. Every process of the test (moto, the "
        f"double, the sender, the workers) shares 2 cores: at {largest.cpu_per_post_us():,.0f} µs of CPU per "
        f"post in all, 2 cores sustain at most {2e6 / largest.cpu_per_post_us():,.0f} posts/s."
    )
    return [
        verdict,
        solo,
        f"On Lambda (1,769 MB = 1 vCPU per worker, assuming a vCPU like this one): "
        f"N = {largest.audience:,} in chunks of {options.chunk_size:,} is {invocations} invocations "
        f"running side by side, each at most min({options.lanes} / {options.latency_s:g} s, "
        f"1 / {solo_cpu_us:,.0f} µs) = {per_worker:,.0f} posts/s: {invocations * per_worker:,.0f} "
        f"posts/s, capped by the account quota at {projected:,.0f} posts/s.",
    ]


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {
        "label": outcome.label,
        "audience": outcome.audience,
        "seconds": outcome.seconds,
        "posts_per_s": outcome.per_second,
        "handler_seconds": outcome.handler_seconds,
        "invocations": outcome.invocations,
        "throttled": outcome.throttled,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "cpu_s": outcome.cpu,
    }


def chart(ours: list[Outcome], baselines: list[Outcome], threaded: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"N = {o.audience:,}" for o in ours]
    series = [
        (baselines[0].label, baselines),
        (threaded[0].label, threaded),
        ("this project (worker invocations)", ours),
    ]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    width = 0.27
    for number, (label, outcomes) in enumerate(series):
        offset = (number - 1) * width
        rates = [o.per_second for o in outcomes]
        axes.bar([i + offset for i in range(len(labels))], rates, width, label=label)
        for i, rate in enumerate(rates):
            axes.text(i + offset, rate, f"{rate:,.0f}", ha="center", va="bottom", fontsize=7)
    axes.axhline(GOAL_PER_S, color="tab:green", linestyle="--", linewidth=1, label=f"goal {GOAL_PER_S:,}/s")
    axes.axhline(
        ACCOUNT_QUOTA_PER_S, color="tab:red", linestyle=":", linewidth=1, label="API Gateway quota 10,000/s"
    )
    axes.set_xticks(list(range(len(labels))), labels)
    axes.set_ylabel("posts per second")
    axes.set_title("Fan-out of one public message (management API latency 20 ms)")
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


QUICK = FanoutOptions(
    sizes=(20, 60),
    throttled_quota_per_s=200,
    chunk_size=25,
    lanes=8,
    processes=1,
    baseline_sample=20,
    threaded_sample=20,
    threads=4,
    double_requests=500,
    single_worker_posts=50,
)


def main(*, quick: bool, output: Path, command: str) -> Report:
    return run(QUICK if quick else FanoutOptions(), command, output)
