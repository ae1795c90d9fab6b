"""In-memory stand-ins for the interfaces of ``chat.ports``, for the core's fast tests.

Each keeps the semantics the real adapter documents, in plain dictionaries: every write is atomic
and every read sees every earlier write (as DynamoDB's conditional writes and strongly consistent
reads do), conditional deletes and updates fail the same way, and TTLs are explicit: nothing
expires by itself; reads filter on ``expiresAt > now`` as the store's queries do. No moto, no
sockets, no threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chat.config import Settings
from chat.cursor import lowest_id_at
from chat.errors import DependencyError
from chat.grace import PresenceCheck
from chat.limits import Spent
from chat.notifier import Delivery, FanoutReport
from chat.store import PUBLIC_FEED, ConnectionRecord, Page, Presence, SaveResult, StoredMessage, user_feed

T0 = 1_780_000_000.0  # a second in 2026, whole so that stored integer times are exact


def settings(**overrides: Any) -> Settings:
    """Settings as the stack sets them, with ``overrides``."""
    return Settings(
        connections_table="c", presence_table="p", messages_table="m", user_pool_id="pool", **overrides
    )


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _PresenceItem:
    conns: set[str] = field(default_factory=set)
    expires_at: int = 0
    left_at_ms: int | None = None
    left_by: str | None = None


@dataclass
class _DedupRecord:
    message_id: str
    feed: str
    delivered: bool = False


class FakeStore:
    """The store: connections (with ``connectedAt``), presence items, feeds, dedup records, buckets."""

    def __init__(self, *, page_size: int = 1000) -> None:
        self.page_size = page_size
        self.connections: dict[str, tuple[str, int]] = {}  # id -> (username, connectedAt)
        self.presence: dict[str, _PresenceItem] = {}
        self.feeds: dict[str, dict[str, tuple[StoredMessage, int]]] = {}  # feed -> id -> (message, expiresAt)
        self.dedup: dict[tuple[str, str], _DedupRecord] = {}
        self.buckets: dict[tuple[str, str], int] = {}
        self.failing: set[str] = set()  # names of methods that raise DependencyError

    def _check(self, method: str) -> None:
        if method in self.failing:
            raise DependencyError(f"could not {method}")

    # ---- connections and presence ------------------------------------------------------------

    def add_connection(self, connection: ConnectionRecord, *, now: float, ttl_seconds: int) -> bool:
        self._check("add_connection")
        expires_at = int(now + ttl_seconds)
        self.connections[connection.connection_id] = (connection.username, int(now))
        old = self.presence.get(connection.username)
        item = self.presence[connection.username] = _PresenceItem(
            conns={*(old.conns if old else ()), connection.connection_id}, expires_at=expires_at
        )
        lapsed = (old.expires_at if old else 0) < now
        previous = (old.conns if old else set()) - {connection.connection_id}
        if previous and lapsed:  # every earlier connection outlived its TTL: stale
            item.conns -= previous
            previous = set()
        still_announced = old is not None and old.left_at_ms is not None and not lapsed
        return not previous and not still_announced

    def remove_connection(
        self, connection: ConnectionRecord, *, connected_before: float | None = None
    ) -> bool:
        self._check("remove_connection")
        old_conns = self._drop_connection(connection, connected_before)
        if not old_conns or not old_conns <= {connection.connection_id}:
            return False
        item = self.presence.get(connection.username)
        if item is None or item.conns:
            return False
        del self.presence[connection.username]
        return True

    def leave(self, connection: ConnectionRecord, *, left_at_ms: int, hold_until: float) -> bool:
        self._check("leave")
        old_conns = self._drop_connection(connection, None)
        if not old_conns or not old_conns <= {connection.connection_id}:
            return False
        item = self.presence.get(connection.username)
        if item is None or item.conns or item.left_at_ms is not None:
            return False
        item.left_at_ms, item.left_by, item.expires_at = left_at_ms, connection.connection_id, int(hold_until)
        return True

    def end_grace(self, username: str, *, left_by: str | None) -> bool:
        self._check("end_grace")
        item = self.presence.get(username)
        if item is None:
            return left_by is None  # DynamoDB: a condition on absent attributes holds for no item
        pending = item.left_at_ms is None if left_by is None else item.left_by == left_by
        if item.conns or not pending:
            return False
        del self.presence[username]
        return True

    def presence_of(self, username: str) -> Presence | None:
        self._check("presence_of")
        item = self.presence.get(username)
        if item is None:
            return None
        return Presence(username, frozenset(item.conns), item.left_at_ms, item.left_by)

    def _drop_connection(
        self, connection: ConnectionRecord, connected_before: float | None
    ) -> set[str] | None:
        row = self.connections.get(connection.connection_id)
        if row is not None and connected_before is not None and row[1] >= int(connected_before):
            return None  # too young to be dead
        self.connections.pop(connection.connection_id, None)
        item = self.presence.get(connection.username)
        if item is None:
            return set()
        old = set(item.conns)
        item.conns.discard(connection.connection_id)
        return old

    def connections_of(self, *usernames: str) -> list[ConnectionRecord]:
        self._check("connections_of")
        return [
            ConnectionRecord(connection_id, name)
            for name in dict.fromkeys(usernames)
            if name in self.presence
            for connection_id in sorted(self.presence[name].conns)
        ]

    def all_connections(self) -> Iterator[list[ConnectionRecord]]:
        self._check("all_connections")
        everyone = [ConnectionRecord(cid, user) for cid, (user, _) in self.connections.items()]
        for start in range(0, len(everyone), self.page_size):
            yield everyone[start : start + self.page_size]

    def online_users(self, *, now: float) -> list[str]:
        self._check("online_users")
        return sorted(
            name
            for name, item in self.presence.items()
            if item.expires_at > int(now) and (item.conns or item.left_at_ms is not None)
        )

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
    ) -> Spent:
        """The bucket's rule in one step: an idle bucket restarts from now; past the ceiling, refused."""
        self._check("spend_budget")
        tat = max(self.buckets.get((username, route), 0), now_ms)
        if tat > ceiling_ms:
            return Spent(admitted=False, tat_ms=tat)
        self.buckets[(username, route)] = tat + step_ms
        return Spent(admitted=True, tat_ms=tat + step_ms)

    # ---- messages ----------------------------------------------------------------------------

    def save_message(
        self, message: StoredMessage, *, idempotency_key: str | None, expires_at: int
    ) -> SaveResult:
        self._check("save_message")
        feeds = [PUBLIC_FEED] if message.to is None else [user_feed(message.sender), user_feed(message.to)]
        if idempotency_key is not None:
            record = self.dedup.get((message.sender, idempotency_key))
            if record is not None:
                original = self.feeds.get(record.feed, {}).get(record.message_id)
                undelivered = None if record.delivered or original is None else original[0]
                return SaveResult(record.message_id, duplicate=True, undelivered=undelivered)
            self.dedup[(message.sender, idempotency_key)] = _DedupRecord(message.id, feeds[0])
        for feed in feeds:
            self.feeds.setdefault(feed, {})[message.id] = (message, expires_at)
        return SaveResult(message.id, duplicate=False)

    def mark_delivered(self, sender: str, idempotency_key: str) -> None:
        self._check("mark_delivered")
        record = self.dedup.get((sender, idempotency_key))
        if record is None:  # the real update is conditional on the record
            raise DependencyError("could not record the delivery")
        record.delivered = True

    def read_since(self, feeds: list[str], *, floor_ms: int, after: str, limit: int, now: float) -> Page:
        self._check("read_since")
        per_feed = [self._read_feed(feed, floor_ms, after, limit, now) for feed in feeds]
        merged = sorted((m for messages, _ in per_feed for m in messages), key=lambda m: m.id)
        repeats = [m for m in merged if m.id <= after]
        newer = [m for m in merged if m.id > after]
        more = len(newer) > limit or any(feed_more for _, feed_more in per_feed)
        return Page(messages=repeats + newer[:limit], more=more)

    def _read_feed(
        self, feed: str, floor_ms: int, after: str, limit: int, now: float
    ) -> tuple[list[StoredMessage], bool]:
        """One feed from the floor on: every repeat and ``limit`` newer; True when more are newer."""
        visible = [m for m in self._live(feed, now) if m.id >= lowest_id_at(floor_ms)]
        repeats = [m for m in visible if m.id <= after]
        newer = [m for m in visible if m.id > after]
        return repeats + newer[:limit], len(newer) > limit

    def latest(self, feeds: list[str], *, limit: int, now: float) -> list[StoredMessage]:
        self._check("latest")
        newest_first = sorted((m for feed in feeds for m in self._live(feed, now)), key=lambda m: m.id)[::-1]
        return newest_first[:limit][::-1]

    def _live(self, feed: str, now: float) -> list[StoredMessage]:
        """A feed's messages not past their expiry, oldest first."""
        items = self.feeds.get(feed, {}).values()
        return sorted((m for m, expires_at in items if expires_at > int(now)), key=lambda m: m.id)

    def stored(self, feed: str = PUBLIC_FEED) -> list[StoredMessage]:
        """Every message in a feed, expired or not, oldest first (what the table holds)."""
        return sorted((m for m, _ in self.feeds.get(feed, {}).values()), key=lambda m: m.id)

    def expiry_of(self, message_id: str, feed: str = PUBLIC_FEED) -> int:
        return self.feeds[feed][message_id][1]


class FakeNotifier:
    """Posts land in ``posts`` in order; ``gone`` answer 410, ``failing`` fail after retries.

    ``on_post`` runs before each post is answered: a test watches the order of things with it, or
    makes a connection go away at a given moment; an outcome it returns answers that one post.
    """

    endpoint = "https://api.example/test"

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.on_post: Callable[[str, dict[str, Any]], Delivery | None] | None = None

    def send(self, connection_id: str, frame: str) -> Delivery:
        decoded = json.loads(frame)
        answer = self.on_post(connection_id, decoded) if self.on_post is not None else None
        if answer is not None and answer is not Delivery.DELIVERED:
            return answer
        if connection_id in self.gone:
            return Delivery.GONE
        if connection_id in self.failing:
            return Delivery.FAILED
        self.posts.append((connection_id, decoded))
        return Delivery.DELIVERED

    def send_many(self, connection_ids: Iterable[str], frame: str) -> FanoutReport:
        report = FanoutReport()
        for connection_id in connection_ids:
            report.add(connection_id, self.send(connection_id, frame))
        return report

    def frames(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        """What one connection received, in order (``frame_type`` picks one type)."""
        return [
            frame
            for target, frame in self.posts
            if target == connection_id and (frame_type is None or frame["type"] == frame_type)
        ]


class FakeDirectory:
    """The accounts that exist; every lookup is counted."""

    def __init__(self, *users: str) -> None:
        self.users = set(users)
        self.lookups: list[str] = []

    def remember(self, username: str) -> None:
        self.users.add(username)

    def exists(self, username: str) -> bool:
        self.lookups.append(username)
        return username in self.users


class FakeDispatcher:
    """Records each chunk handed to a worker; ``accepts`` False is Lambda refusing the invoke."""

    def __init__(self, *, accepts: bool = True) -> None:
        self.accepts = accepts
        self.jobs: list[tuple[str, str, list[ConnectionRecord]]] = []

    def dispatch(self, endpoint: str, frame: str, connections: Sequence[ConnectionRecord]) -> bool:
        if self.accepts:
            self.jobs.append((endpoint, frame, list(connections)))
        return self.accepts


class FakeCloser:
    def __init__(self) -> None:
        self.closed: list[str] = []

    def close(self, connection_id: str) -> bool:
        self.closed.append(connection_id)
        return True


class FakeScheduler:
    """Records each check with its delay; ``accepts`` False is SQS refusing the message."""

    def __init__(self, *, accepts: bool = True) -> None:
        self.accepts = accepts
        self.checks: list[tuple[PresenceCheck, float]] = []

    def schedule(self, check: PresenceCheck, *, delay_seconds: float) -> bool:
        if self.accepts:
            self.checks.append((check, delay_seconds))
        return self.accepts


class FakeProbe:
    """API Gateway's answer to GET @connections: the connections in ``alive`` exist."""

    def __init__(self, *alive: str) -> None:
        self.alive = set(alive)
        self.asked: list[str] = []

    def exists(self, connection_id: str) -> bool:
        self.asked.append(connection_id)
        return connection_id in self.alive
