"""Benchmark 3: a reconnecting client replays 1,000 missed messages with ``sync`` (pages of 500).

Over the local stack: a reader connects, takes the cursor of its own message's ack and leaves;
a writer sends 1,000 messages; the reader reconnects and calls ``sync`` from that cursor until
``more`` is false. Timed from the first ``sync`` to the last ``synced``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat import config
from websockets.asyncio.client import ClientConnection, connect

from benchmarks import machine
from benchmarks.report import OUTPUT, Report, Table
from local_stack.testing import running_stack

WAIT_S = 60.0


@dataclass
class ResumeOptions:
    missed: int = 1_000
    limit: int = 500
    window: int = 20  # messages the writer sends before waiting for their acks


async def next_frame(socket: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=WAIT_S))
        if frame.get("type") == kind:
            return frame


async def write(socket: ClientConnection, count: int, window: int) -> None:
    """``count`` messages, ``window`` in flight at a time (each waits for its ack)."""
    for start in range(0, count, window):
        batch = range(start, min(start + window, count))
        for n in batch:
            await socket.send(json.dumps({"action": "sendmessage", "text": f"missed {n}"}))
        for _ in batch:
            await next_frame(socket, "ack")


async def replay(url: str, cursor: str, limit: int) -> tuple[float, int, int, int]:
    """Seconds from the first sync to the last synced; frames replayed, distinct ids; sync calls."""
    async with connect(url, max_size=2**20, ping_interval=None) as socket:
        started = time.monotonic()
        replayed, calls, more = 0, 0, True
        ids: set[str] = set()
        while more:
            await socket.send(json.dumps({"action": "sync", "since": cursor, "limit": limit}))
            calls += 1
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=WAIT_S))
                if frame.get("type") == "message":
                    replayed += 1
                    ids.add(frame["id"])
                elif frame.get("type") == "synced":
                    cursor, more = frame["cursor"], frame["more"]
                    break
        return time.monotonic() - started, replayed, len(ids), calls


async def scenario(reader_url: str, writer_url: str, options: ResumeOptions) -> tuple[float, int, int, int]:
    async with connect(reader_url, ping_interval=None) as reader:
        await reader.send(json.dumps({"action": "sendmessage", "text": "before I go"}))
        cursor = (await next_frame(reader, "ack"))["cursor"]
    async with connect(writer_url, ping_interval=None) as writer:
        await write(writer, options.missed, options.window)
    return await replay(reader_url, cursor, options.limit)


def run(options: ResumeOptions, command: str, output: Path = OUTPUT) -> Report:
    os.environ[config.budget_variable("sendmessage")] = "100000"  # one writer sends 1,000 messages in seconds
    with running_stack() as stack:
        reader, writer = stack.create_user("reader"), stack.create_user("writer")
        seconds, replayed, distinct, calls = asyncio.run(
            scenario(stack.connect_url(reader.access_token), stack.connect_url(writer.access_token), options)
        )
    report = Report("resume", "Resume: sync replays missed messages", machine.describe(command))
    table = Table(
        ["missed", "limit", "sync calls", "frames replayed", "distinct messages", "time (s)", "frames/s"]
    )
    table.add(options.missed, options.limit, calls, replayed, distinct, seconds, replayed / seconds)
    report.tables.append(("Over the local stack (real handlers, moto, real sockets)", table))
    report.notes += [
        "Replayed counts every message frame sync sent: it may repeat a few already seen (the cursor's "
        "overlap window, docs/protocol.md), so it can exceed 'missed'; clients deduplicate by id.",
        "Each replayed message is one management-API post, one after another, from the sync invocation.",
    ]
    report.data = {
        "seconds": seconds,
        "replayed": replayed,
        "distinct": distinct,
        "calls": calls,
        "missed": options.missed,
    }
    report.write(output)
    return report


QUICK = ResumeOptions(missed=30, limit=20, window=10)


def main(*, quick: bool, output: Path, command: str) -> Report:
    return run(QUICK if quick else ResumeOptions(), command, output)
