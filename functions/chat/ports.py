"""What the chat's core (``chat.service.ChatService``) needs of the world around it, as typed interfaces.

Each interface lists only the calls the core makes. The adapters satisfy them structurally, as
mypy checks wherever ``chat.wiring`` hands them over: ``ChatStore`` (DynamoDB), ``Notifier`` (the
management API over HTTP), ``UserDirectory`` (Cognito), ``FanoutDispatcher`` (Lambda),
``RateLimiter``, ``ConnectionCloser``, ``PresenceScheduler`` (SQS) and ``ConnectionProbe``. The
fast tests of the core pass small in-memory fakes instead (tests/functions/fakes.py).

They live together here, not beside each adapter, because they are the core's side of the
boundary: narrower than any adapter, and read in one place by whoever writes a new adapter or a
fake. The values that cross the boundary (``ConnectionRecord``, ``StoredMessage``, ``Delivery``, ...)
stay with the modules that define them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from chat.grace import PresenceCheck
from chat.limits import Strike, Verdict
from chat.notifier import Delivery, FanoutReport
from chat.store import ConnectionRecord, InboxEntry, Page, Presence, SaveResult, StoredMessage


class ConnectionStore(Protocol):
    """Open connections and per-user presence. Every write that decides something (first or last
    connection, the end of a grace) is atomic; every read is strongly consistent."""

    def add_connection(self, connection: ConnectionRecord, *, now: float, ttl_seconds: int) -> bool:
        """Record an open connection; True when the user came online with it."""

    def remove_connection(
        self, connection: ConnectionRecord, *, connected_before: float | None = None
    ) -> bool:
        """Forget a connection (idempotent; one recorded at or after ``connected_before`` is kept);
        True when the user went offline with it."""

    def leave(self, connection: ConnectionRecord, *, left_at_ms: int, hold_until: float) -> bool:
        """Forget a closed connection; True when it was the user's last, which starts the grace."""

    def end_grace(self, username: str, *, left_by: str | None) -> bool:
        """Take the user offline if the grace ``left_by``'s close started still holds."""

    def presence_of(self, username: str) -> Presence | None: ...

    def connections_of(self, *usernames: str) -> list[ConnectionRecord]:
        """Every open connection of these users."""

    def all_connections(self) -> Iterator[list[ConnectionRecord]]:
        """Every open connection, a page at a time."""

    def online_users(self, *, now: float) -> list[str]:
        """Users with a live connection or inside their presence grace, sorted."""


class MessageStore(Protocol):
    """The message history: durable, idempotent per sender and key, read oldest first."""

    def save_message(
        self, message: StoredMessage, *, idempotency_key: str | None, expires_at: int
    ) -> SaveResult: ...

    def mark_delivered(self, sender: str, idempotency_key: str) -> None:
        """Record that the message's fan-out completed (a resend then delivers nothing)."""

    def read_since(self, feeds: list[str], *, floor_ms: int, after: str, limit: int, now: float) -> Page:
        """Messages stamped from ``floor_ms`` on: all up to ``after`` plus ``limit`` newer."""

    def latest(self, feeds: list[str], *, limit: int, now: float) -> list[StoredMessage]:
        """The latest ``limit`` messages across ``feeds``, oldest first."""


class Store(ConnectionStore, MessageStore, Protocol):
    """Both halves: one table set holds connections, presence and messages."""


class ConversationStore(Store, Protocol):
    """What the conversation use cases (``chat.conversations``) read and write besides."""

    def older(self, feeds: list[str], *, before: str | None, limit: int, now: float) -> Page: ...

    def advance_read(self, reader: str, partner: str | None, up_to: str, *, expires_at: int) -> bool: ...

    def claim_typing(self, sender: str, recipient: str, *, now_ms: int, window_ms: int) -> bool: ...

    def inbox(self, username: str, *, now: float) -> list[InboxEntry]: ...

    def count_after(
        self, feed: str, *, after: str | None, cap: int, now: float, not_from: str | None = None
    ) -> int: ...


class Poster(Protocol):
    """Posts frames to WebSocket connections; never raises for one recipient's failure."""

    @property
    def endpoint(self) -> str:
        """The management API endpoint posts go to (fan-out workers and presence checks need it)."""

    def send(self, connection_id: str, frame: str) -> Delivery: ...

    def send_many(self, connection_ids: Iterable[str], frame: str) -> FanoutReport: ...


class Directory(Protocol):
    """Which usernames have an account."""

    def remember(self, username: str) -> None:
        """A user who holds a valid token certainly exists."""

    def exists(self, username: str) -> bool: ...


class Dispatcher(Protocol):
    """Hands a chunk of a large fan-out to a worker invocation."""

    def dispatch(self, endpoint: str, frame: str, connections: Sequence[ConnectionRecord]) -> bool:
        """True when a worker will post ``frame`` to ``connections``; False: deliver it yourself."""


class Limiter(Protocol):
    """Per-user budgets, and the strikes of connections that keep flooding."""

    def admit(self, username: str, route: str, cost: int) -> Verdict: ...

    def strike(self, connection_id: str) -> Strike: ...

    def told(self, connection_id: str) -> None: ...

    def wait_until_told(self, connection_id: str, timeout_s: float) -> bool: ...


class Closer(Protocol):
    """Closes a connection from the server side."""

    def close(self, connection_id: str) -> bool: ...


class Scheduler(Protocol):
    """Queues a presence check to run ``delay_seconds`` later (at least once)."""

    def schedule(self, check: PresenceCheck, *, delay_seconds: float) -> bool:
        """False when it could not be queued."""


class Probe(Protocol):
    """Asks whether a connection still exists."""

    def exists(self, connection_id: str) -> bool: ...
