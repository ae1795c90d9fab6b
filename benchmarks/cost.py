"""Benchmark 4: what each route costs in AWS requests, and in dollars per million messages.

The real handlers run against moto, the management-API double and the worker pool. A botocore
event hook on boto3's default session (registered before the handlers build their clients) counts
every DynamoDB, Cognito and Lambda call and estimates its request units from the item sizes sent
and read; the double counts the management-API posts (those are urllib3 calls, not botocore's).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from chat import config
from chat.cursor import IdGenerator
from chat.handlers import connect, disconnect, history, inbox, read, sendmessage, sync
from chat.handlers import typing as typing_route

from benchmarks import machine
from benchmarks.aws import MotoProcess, apply_environment, handler_environment
from benchmarks.fanout import EVENTS, connection_id, lambda_context, register
from benchmarks.lambda_pool import LambdaPool
from benchmarks.management_double import ManagementDoubleProcess
from benchmarks.report import OUTPUT, Report, Table
from infra import sizing

# Prices assumed (us-east-1, on-demand, as published on AWS's pricing pages; assumptions as of
# 2025, after DynamoDB's November 2024 cut). Check the pages before relying on the dollars.
PRICES = {
    "DynamoDB write request unit": 0.625 / 1e6,
    "DynamoDB read request unit": 0.125 / 1e6,
    "Lambda request": 0.20 / 1e6,
    "Lambda GB-second (arm64)": 0.0000133334,
    "API Gateway WebSocket message (32 KB unit)": 1.00 / 1e6,
    "API Gateway connection-minute": 0.25 / 1e6,
    "AppSync Events operation": 1.00 / 1e6,
    "AppSync Events connection-minute": 0.08 / 1e6,
}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
_READS = {"GetItem", "Query", "Scan", "BatchGetItem"}


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size, roughly: attribute names plus the values' lengths."""
    return sum(len(name) + len(json.dumps(value)) - 8 for name, value in item.items())


@dataclass
class Meter:
    """Counts botocore calls by service and operation, and estimates request units."""

    calls: Counter[str] = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0

    def install(self) -> None:
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.*.*", self._before_call)
        session.events.register("after-call.*.*", self._after_call)

    def reset(self) -> None:
        self.calls.clear()
        self.write_units = self.read_units = 0.0

    def _before_call(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["metered_body"] = params.get("body", b"")  # the serialized request

    def _after_call(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        self.calls[f"{service}.{model.name}"] += 1
        if service == "dynamodb":
            self._units(model.name, context.get("metered_body") or b"{}", parsed)

    def _units(self, operation: str, request: bytes | str, parsed: dict[str, Any]) -> None:
        body = json.loads(request)
        if operation == "TransactWriteItems":
            for write in body.get("TransactItems", []):
                item = next(iter(write.values())).get("Item", {})
                self.write_units += 2 * max(1, math.ceil(item_bytes(item) / 1024))  # transactions: 2x
        elif operation in _WRITES:
            self.write_units += max(1, math.ceil(item_bytes(body.get("Item", {})) / 1024))
        elif operation == "BatchGetItem":  # each item is read (and rounded up) on its own
            for table, items in parsed.get("Responses", {}).items():
                units = sum(max(1, math.ceil(item_bytes(i) / 4096)) for i in items)
                consistent = body.get("RequestItems", {}).get(table, {}).get("ConsistentRead")
                self.read_units += units if consistent else units / 2
        elif operation in _READS:
            items = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
            units = max(1, math.ceil(sum(item_bytes(i) for i in items) / 4096))
            self.read_units += units if body.get("ConsistentRead") else units / 2


@dataclass
class RouteCost:
    route: str
    calls: Counter[str]
    write_units: float
    read_units: float
    posts: int
    invokes: int
    lambda_gb_s: float
    messages: int  # API Gateway messages: the frame in plus every frame posted

    def dollars(self) -> float:
        return (
            self.write_units * PRICES["DynamoDB write request unit"]
            + self.read_units * PRICES["DynamoDB read request unit"]
            + (1 + self.invokes) * PRICES["Lambda request"]
            + self.lambda_gb_s * PRICES["Lambda GB-second (arm64)"]
            + self.messages * PRICES["API Gateway WebSocket message (32 KB unit)"]
        )


class CostBench:
    def __init__(self) -> None:
        self.meter = Meter()
        self.meter.install()
        self.double = ManagementDoubleProcess()
        self.moto = MotoProcess()
        env = handler_environment(
            self.moto,
            self.double.endpoint,
            **{
                config.budget_variable("sendmessage"): "100000",
                config.FANOUT_FUNCTION_NAME: "chat-fanout-worker",
            },
        )
        self.pool = LambdaPool(1, env, self.double.endpoint)
        apply_environment({**env, "AWS_ENDPOINT_URL_LAMBDA": self.pool.endpoint})
        self.cognito = self.moto.client("cognito-idp")

    def close(self) -> None:
        self.pool.stop()
        self.moto.stop()
        self.double.stop()

    def add_user(self, username: str) -> None:
        self.cognito.admin_create_user(UserPoolId=self.moto.resources.user_pool_id, Username=username)

    def event(self, name: str, username: str, connection: str, body: dict[str, Any] | None = None) -> Any:
        raw: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
        raw["requestContext"]["connectionId"] = connection
        raw["requestContext"]["authorizer"] = {"principalId": username, "username": username}
        raw["requestContext"]["messageId"] = f"frame-{time.monotonic_ns()}="
        if body is not None:
            raw["body"] = json.dumps(body)
        return raw

    def connection_count(self) -> int:
        dynamodb = self.moto.client("dynamodb")
        return int(dynamodb.scan(TableName=self.moto.table("Connections"), Select="COUNT")["Count"])

    def measure(self, route: str, handler: Any, event: Any, *, memory_mb: int) -> RouteCost:
        if route == "public message":
            route = f"public message to {self.connection_count():,} connections"
        self.meter.reset()
        self.double.reset()
        self.pool.take_invocations()
        started = time.monotonic()
        handler(event, lambda_context())
        seconds = time.monotonic() - started
        runs = self.pool.collect(self.pool.take_invocations(), timeout=120)
        gb_s = memory_mb / 1024 * seconds + sum(
            sizing.FANOUT_WORKER_MEMORY_MB / 1024 * (r.finished - r.started) for r in runs
        )
        posts = self.double.stats()["posts"]
        return RouteCost(
            route,
            Counter(self.meter.calls),
            self.meter.write_units,
            self.meter.read_units,
            posts,
            len(runs),
            gb_s,
            messages=1 + posts if route not in ("$connect", "$disconnect") else posts,
        )


def run(sizes: tuple[int, int], sync_size: int, command: str, output: Path = OUTPUT) -> Report:
    small, large = sizes
    bench = CostBench()
    try:
        for user in ("alice", "bob", "carol"):
            bench.add_user(user)
        register(bench.moto, 1, small)  # everyone else, straight into the table
        route = sizing.DEFAULT_MEMORY_MB
        costs = [
            bench.measure(
                "$connect", connect.handler, bench.event("connect", "alice", "alice-1="), memory_mb=route
            )
        ]
        connect.handler(bench.event("connect", "bob", "bob-1="), lambda_context())
        connect.handler(bench.event("connect", "bob", "bob-2="), lambda_context())
        connect.handler(bench.event("connect", "alice", "alice-2="), lambda_context())
        say = {"action": "sendmessage", "text": "hello, everyone"}
        send_mb = sizing.route_memory_mb("SendMessage")
        costs.append(
            bench.measure(
                "public message",
                sendmessage.handler,
                bench.event("message", "alice", "alice-1=", say),
                memory_mb=send_mb,
            )
        )
        private = {"action": "sendmessage", "text": "just you", "to": "bob"}
        costs.append(
            bench.measure(
                "private message (2 + 1 connections)",
                sendmessage.handler,
                bench.event("message", "alice", "alice-1=", private),
                memory_mb=send_mb,
            )
        )
        # The conversation actions of version 1.1, in alice and bob's conversation (bob has 2 connections).
        read_up_to = IdGenerator().new_id(int(time.time() * 1000) - 1000)
        for label, handler, body in (
            ("history of a conversation", history.handler, {"action": "history", "with": "bob"}),
            (
                "read (1 + 2 connections told)",
                read.handler,
                {"action": "read", "with": "bob", "upTo": read_up_to},
            ),
            ("typing (2 connections)", typing_route.handler, {"action": "typing", "to": "bob"}),
            ("inbox (2 conversations)", inbox.handler, {"action": "inbox"}),
        ):
            costs.append(
                bench.measure(
                    label, handler, bench.event("message", "alice", "alice-1=", body), memory_mb=route
                )
            )
        for n in range(sync_size):
            sendmessage.handler(
                bench.event("message", "carol", "carol-0=", {"action": "sendmessage", "text": f"m{n}"}),
                lambda_context(),
            )
        costs.append(
            bench.measure(
                f"sync of {sync_size}",
                sync.handler,
                bench.event("message", "bob", "bob-1=", {"action": "sync", "limit": sync_size}),
                memory_mb=route,
            )
        )
        disconnect.handler(bench.event("disconnect", "alice", "alice-2="), lambda_context())
        costs.append(
            bench.measure(
                "$disconnect (last of a user)",
                disconnect.handler,
                bench.event("disconnect", "alice", "alice-1="),
                memory_mb=route,
            )
        )
        register(bench.moto, small, large)
        costs.append(
            bench.measure(
                "public message",
                sendmessage.handler,
                bench.event("message", "bob", "bob-1=", say),
                memory_mb=send_mb,
            )
        )
    finally:
        bench.close()
    return write_report(costs, command, output)


def write_report(costs: list[RouteCost], command: str, output: Path) -> Report:
    report = Report("cost", "Cost per operation", machine.describe(command))
    requests = Table(
        [
            "route",
            "DynamoDB calls",
            "WRU (est.)",
            "RRU (est.)",
            "Cognito calls",
            "Lambda invokes",
            "management posts",
            "Lambda GB-s (here)",
        ]
    )
    dollars = Table(["route", "API Gateway messages", "$ per operation", "$ per million operations"])
    for cost in costs:
        dynamodb = sum(n for name, n in cost.calls.items() if name.startswith("dynamodb."))
        cognito = sum(n for name, n in cost.calls.items() if name.startswith("cognito-idp."))
        requests.add(
            cost.route,
            dynamodb,
            cost.write_units,
            cost.read_units,
            cognito,
            cost.invokes,
            cost.posts,
            cost.lambda_gb_s,
        )
        dollars.add(cost.route, cost.messages, f"{cost.dollars():.8f}", cost.dollars() * 1e6)
    report.tables.append(("AWS requests per route", requests))
    report.tables.append(("Dollars (prices below)", dollars))
    report.tables.append(
        ("Per million public messages: this backend vs managed per-message pricing", comparison(costs))
    )
    report.notes += [
        "Prices assumed, us-east-1 on-demand as published on AWS's pricing pages (assumptions, 2025, after "
        "DynamoDB's November 2024 price cut): "
        + "; ".join(
            f"{name}: ${price * 1e6:,.4f} per million" if price < 1e-5 else f"{name}: ${price}"
            for name, price in PRICES.items()
        )
        + ".",
        "Request units are estimated from item sizes (writes: 1 KB units, transactions count twice; reads: "
        "4 KB units, eventually consistent ones half). moto does not report real capacity.",
        "Lambda GB-s are the durations measured here (moto, the double) times the functions' memory; on "
        "AWS the durations differ. Connection-minutes are not per message and are left out.",
        "Calls by operation: " + "; ".join(f"{c.route}: {dict(c.calls)}" for c in costs),
    ]
    report.data = {c.route: {"calls": dict(c.calls), "dollars": c.dollars(), "posts": c.posts} for c in costs}
    report.write(output)
    return report


def comparison(costs: list[RouteCost]) -> Table:
    table = Table(
        [
            "audience",
            "this backend ($/M messages)",
            "of which API Gateway messages",
            "AppSync Events ($/M, 1 publish + N deliveries)",
        ]
    )
    for cost in costs:
        if not cost.route.startswith("public message"):
            continue
        audience = cost.posts - 1  # the ack is the one post that is not a delivery
        gateway = cost.messages * PRICES["API Gateway WebSocket message (32 KB unit)"]
        appsync = (1 + audience) * PRICES["AppSync Events operation"]
        table.add(f"{audience:,} connections", cost.dollars() * 1e6, gateway * 1e6, appsync * 1e6)
    return table


def main(*, quick: bool, output: Path, command: str) -> Report:
    return run((20, 60) if quick else (100, 10_000), 10 if quick else 100, command, output)


__all__ = ["connection_id", "main"]
