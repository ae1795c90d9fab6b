"""WebSocket clients for the end-to-end benchmarks: many sockets on one asyncio loop, each noting when
every ``message`` frame arrived, and senders that stamp each text with the time it was sent
(``time.monotonic``: one clock for every process on the machine)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

MARK = "bench:"


@dataclass
class Listener:
    """One connection's receipts: (sent at, received at) per message frame it got."""

    socket: ClientConnection
    receipts: list[tuple[float, float]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    keep_frames: bool = False

    async def listen(self) -> None:
        async for raw in self.socket:
            now = time.monotonic()
            frame = json.loads(raw)
            if self.keep_frames:
                self.frames.append(frame)
            text = frame.get("text", "") if frame.get("type") == "message" else ""
            if text.startswith(MARK):
                self.receipts.append((float(text.split(":")[1]), now))


def stamped_text(number: int) -> str:
    return f"{MARK}{time.monotonic():.6f}:{number}"


async def open_all(urls: list[str], *, batch: int = 20) -> list[ClientConnection]:
    """Open every socket, ``batch`` handshakes at a time (as a crowd of real clients would arrive)."""
    sockets: list[ClientConnection] = []
    for start in range(0, len(urls), batch):
        sockets += await asyncio.gather(
            *(
                connect(url, open_timeout=30, max_size=2**20, ping_interval=None)
                for url in urls[start : start + batch]
            )
        )
    return sockets


async def send_steadily(
    senders: list[ClientConnection], *, rate_per_s: float, seconds: float, body: dict[str, Any] | None = None
) -> int:
    """``rate_per_s`` messages a second for ``seconds``, taking turns among the senders."""
    count = int(rate_per_s * seconds)
    started = time.monotonic()
    for number in range(count):
        await asyncio.sleep(max(0.0, started + number / rate_per_s - time.monotonic()))
        frame = {"action": "sendmessage", "text": stamped_text(number), **(body or {})}
        await senders[number % len(senders)].send(json.dumps(frame))
    return count


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
