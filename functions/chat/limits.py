"""Per-user budgets on every route: what a request costs, the rule that admits it, and its ledger.

Each user has one token bucket per route, kept as a single number: the generic cell rate
algorithm's *theoretical arrival time* (``tat``), the moment the bucket would be full again. With
a budget of B units a minute one unit takes ``T = 60 s / B`` to refill, and a quiet user may spend a
burst of ``BURST_SHARE`` of a minute's budget at once, so ``tat`` may run up to ``tau = burst * T``
ahead of now. A request costing ``c`` units at time ``now``:

    admitted  when  max(tat, now) + c*T  <=  now + tau,  and then  tat := max(tat, now) + c*T
    refused   otherwise, and nothing changes (refusals cost the flooder nothing, and us little)

``tat`` only ever moves forward, so a value this process saw is a lower bound on the stored one: a
request that the remembered value already refuses is refused here, without calling DynamoDB, and
this pre-check never refuses what the table would admit. Anything else is decided by one
conditional UpdateItem on the user's bucket item (``ChatStore.spend_budget``; two when this process
guessed wrong whether the bucket was idle). ``$connect`` and ``$disconnect`` are never budgeted:
they keep the connection records right.

A connection that is refused ``flood_close_after`` times within a minute, after being told each
time, is closed through the management API (``Strikes``). Both tables live in the Lambda
instance's memory: another instance starts from the stored bucket, and counts its own strikes.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from chat.errors import DependencyError
from chat.observability import logger

# A quiet user may spend this share of a minute's budget at once (15 seconds' worth).
BURST_SHARE = 0.25
# One sync costs a unit, plus one per 25 messages it may replay (each replayed message is a post).
SYNC_UNITS_PER = 25
SYNC_DEFAULT_LIMIT = 100
HISTORY_DEFAULT_LIMIT = 50
# Remembered buckets and strikes per Lambda instance; past this the stale ones are forgotten.
_MAX_REMEMBERED = 10_000
# Concurrent requests of one user and route in one process ask the table one at a time (striped locks).
_LOCK_STRIPES = 64
_STRIKE_WINDOW_S = 60.0


def _sync_cost(body: str | None) -> int:
    """1 + limit // 25: 5 for the default 100, 21 for 500 (one such sync at once, then 6 a minute)."""
    try:
        frame = json.loads(body or "")
    except (ValueError, RecursionError):
        return 1  # not JSON: refused by the route at once, for the price of a ping
    limit = frame.get("limit", SYNC_DEFAULT_LIMIT) if isinstance(frame, dict) else None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return 1
    return 1 + min(limit, 500) // SYNC_UNITS_PER


def _history_cost(body: str | None) -> int:
    """1 + limit // 25: 3 for the default 50, 5 for 100 (a page of 100 may read 200 items)."""
    try:
        frame = json.loads(body or "")
    except (ValueError, RecursionError):
        return 1
    limit = frame.get("limit", HISTORY_DEFAULT_LIMIT) if isinstance(frame, dict) else None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return 1
    return 1 + min(limit, 100) // SYNC_UNITS_PER


# An inbox reads one partition and may count unread messages in up to 100 conversations.
INBOX_COST = 5

# Requests that may cost more than one unit; every other route costs 1 (one line per new route).
COSTS: dict[str, Callable[[str | None], int]] = {
    "sync": _sync_cost,
    "history": _history_cost,
    "inbox": lambda _body: INBOX_COST,
}


def cost_of(route: str, body: str | None) -> int:
    """The units one request on ``route`` with this frame costs."""
    cost = COSTS.get(route)
    return cost(body) if cost else 1


@dataclass(frozen=True)
class Bucket:
    """One route's budget as GCRA parameters, in milliseconds."""

    per_minute: int

    @property
    def unit_ms(self) -> int:
        return max(1, round(60_000 / self.per_minute))

    @property
    def burst(self) -> int:
        return max(1, int(self.per_minute * BURST_SHARE))

    def step_ms(self, cost: int) -> int:
        # A request dearer than the whole burst is charged the burst: allowed, but from a full bucket.
        return min(cost, self.burst) * self.unit_ms

    def ceiling_ms(self, now_ms: int, cost: int) -> int:
        """The latest ``tat`` at which a request of ``cost`` is still admitted."""
        return now_ms + self.burst * self.unit_ms - self.step_ms(cost)

    def refuses(self, tat_ms: int, now_ms: int, cost: int) -> bool:
        return max(tat_ms, now_ms) > self.ceiling_ms(now_ms, cost)

    def retry_after_s(self, tat_ms: int, now_ms: int, cost: int) -> float:
        """Seconds until a request of ``cost`` would be admitted, given ``tat``."""
        return max(0.0, (tat_ms - self.ceiling_ms(now_ms, cost)) / 1000)

    def expires_at(self, now_ms: int) -> int:
        """When the stored item may go: by then the bucket is full again, as if it never existed."""
        return (now_ms + self.burst * self.unit_ms) // 1000 + 60


@dataclass(frozen=True)
class Spent:
    """What the table said: admitted or not, and the bucket's ``tat`` as it now stands."""

    admitted: bool
    tat_ms: int


class BudgetStore(Protocol):
    """The table side (``ChatStore.spend_budget``): one atomic step of one bucket."""

    def spend_budget(
        self,
        username: str,
        route: str,
        *,
        now_ms: int,
        step_ms: int,
        ceiling_ms: int,
        expires_at: int,
        idle_first: bool,
    ) -> Spent: ...


class Strike(enum.Enum):
    TELL = "tell"  # answer rate_limited
    TELL_AND_CLOSE = "tell and close"  # answer, then close the connection: it keeps flooding
    CLOSED_ALREADY = "closed already"  # a frame in flight when it was closed: nothing to post to


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    retry_after_s: float = 0.0
    # False when the in-memory ledger decided (no DynamoDB call was made).
    asked_table: bool = False


class Ledger:
    """The latest ``tat`` this process has seen per (user, route): lower bounds on the stored ones."""

    def __init__(self) -> None:
        self._tat: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def known(self, key: tuple[str, str]) -> int:
        with self._lock:
            return self._tat.get(key, 0)

    def learn(self, key: tuple[str, str], tat_ms: int, now_ms: int) -> None:
        with self._lock:
            self._tat[key] = max(self._tat.get(key, 0), tat_ms)
            if len(self._tat) > _MAX_REMEMBERED:
                # A bucket already full again tells the pre-check nothing: forget those first.
                self._tat = {k: v for k, v in self._tat.items() if v > now_ms}
                if len(self._tat) > _MAX_REMEMBERED:
                    self._tat.clear()


class Strikes:
    """Refusals per connection within a minute (a connection past ``limit`` has been closed), and
    how many of them are still being told.

    A flood's frames run side by side (threads of one process), so the refusal that reaches the
    limit can be ready to close the connection while earlier refusals are still being posted; a
    post that lands after the close earns a 410 and the client never hears it. The closing call
    waits for those first (``wait_until_told``), so a flooder hears every refusal before the close.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, tuple[float, int]] = {}
        self._telling: dict[str, int] = {}
        self._changed = threading.Condition()

    def add(self, connection_id: str, now: float) -> int:
        """Count one refusal (being told until ``told``); the connection's count in its current minute."""
        with self._changed:
            started, count = self._counts.get(connection_id, (now, 0))
            if now - started > _STRIKE_WINDOW_S:
                started, count = now, 0
            self._counts[connection_id] = (started, count + 1)
            if count + 1 <= self.limit:
                self._telling[connection_id] = self._telling.get(connection_id, 0) + 1
            if len(self._counts) > _MAX_REMEMBERED:
                self._counts = {c: v for c, v in self._counts.items() if now - v[0] <= _STRIKE_WINDOW_S}
            return count + 1

    def told(self, connection_id: str) -> None:
        """One refusal counted by ``add`` has been posted (or its post failed)."""
        with self._changed:
            left = self._telling.get(connection_id, 0) - 1
            if left > 0:
                self._telling[connection_id] = left
            else:
                self._telling.pop(connection_id, None)
            self._changed.notify_all()

    def wait_until_told(self, connection_id: str, timeout_s: float) -> bool:
        """Wait until no refusal of this connection is being told; False when ``timeout_s`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: connection_id not in self._telling, timeout=timeout_s)


class RateLimiter:
    """Admits or refuses one request of one user on one route (see the module docstring)."""

    def __init__(
        self,
        store: BudgetStore,
        budgets_per_minute: Mapping[str, int],
        *,
        flood_close_after: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.buckets = {route: Bucket(n) for route, n in budgets_per_minute.items() if n > 0}
        self.ledger = Ledger()
        self.strikes = Strikes(flood_close_after)
        self.clock = clock
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def admit(self, username: str, route: str, cost: int) -> Verdict:
        bucket = self.buckets.get(route)
        if bucket is None:
            return Verdict(admitted=True)
        # A burst of one user's frames running side by side here (threads of one process) waits for
        # the first table answer and is then refused from memory, instead of all asking the table.
        with self._stripes[hash((username, route)) % _LOCK_STRIPES]:
            return self._admit(bucket, username, route, cost)

    def _admit(self, bucket: Bucket, username: str, route: str, cost: int) -> Verdict:
        now_ms = int(self.clock() * 1000)
        key = (username, route)
        known = self.ledger.known(key)
        if bucket.refuses(known, now_ms, cost):
            return Verdict(admitted=False, retry_after_s=bucket.retry_after_s(known, now_ms, cost))
        try:
            spent = self.store.spend_budget(
                username,
                route,
                now_ms=now_ms,
                step_ms=bucket.step_ms(cost),
                ceiling_ms=bucket.ceiling_ms(now_ms, cost),
                expires_at=bucket.expires_at(now_ms),
                idle_first=known < now_ms,
            )
        except DependencyError:
            # Refusing everyone because the counter failed is the outage budgets exist to prevent;
            # known flooders are still refused above, from memory.
            logger.warning("budget not checked: the table failed; admitted", route=route)
            return Verdict(admitted=True, asked_table=True)
        self.ledger.learn(key, spent.tat_ms, now_ms)
        if spent.admitted:
            return Verdict(admitted=True, asked_table=True)
        return Verdict(
            admitted=False, retry_after_s=bucket.retry_after_s(spent.tat_ms, now_ms, cost), asked_table=True
        )

    def strike(self, connection_id: str) -> Strike:
        """Count a refusal of this connection's frame: tell it, close it, or (closed) neither. A
        strike that is told must be followed by ``told`` once the refusal is posted."""
        count = self.strikes.add(connection_id, self.clock())
        if count < self.strikes.limit:
            return Strike.TELL
        return Strike.TELL_AND_CLOSE if count == self.strikes.limit else Strike.CLOSED_ALREADY

    def told(self, connection_id: str) -> None:
        self.strikes.told(connection_id)

    def wait_until_told(self, connection_id: str, timeout_s: float) -> bool:
        """Before a close: wait for this connection's other refusals still being posted."""
        return self.strikes.wait_until_told(connection_id, timeout_s)
