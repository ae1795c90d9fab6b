"""When and how long a management-API post is tried again: bounded, jittered, and held back
together when the account's quota answers 429."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A network failure or a response we cannot read: worth retrying, like a 503.
NETWORK_FAILURE = 503


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and time bounds of one post. ``max_idle``: a kept-alive connection idle longer than
    this is closed, not reused (a socket can die without a word while it sits unused)."""

    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 1.0
    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    max_idle: float = 4.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff: spreads retries of many posts over time."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class Throttle:
    """A 429 is about the account's request rate, not one connection: when one post is throttled,
    every lane of the fan-out holds back for the same backoff, instead of each post finding out for
    itself and using up its attempts on a quota that is still exhausted."""

    def __init__(self) -> None:
        self.until = 0.0

    def hold_for(self, seconds: float) -> None:
        self.until = max(self.until, time.monotonic() + seconds)

    async def wait(self) -> None:
        remaining = self.until - time.monotonic()
        if remaining > 0:
            # Resume spread over as long again, not all lanes in one burst into the same quota.
            await asyncio.sleep(remaining + random.uniform(0, remaining))
