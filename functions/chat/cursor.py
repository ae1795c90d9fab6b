"""Message ids and resume cursors: pure functions, no I/O.

A message id is time-ordered (48 bits of milliseconds, then 80 random bits, in Crockford base32 like
a ULID), so DynamoDB's sort order on ``id`` is storage order. Ids from one process never go
backwards, even within one millisecond.

Why cursors carry a *floor*: several Lambdas store messages at once, each stamping its id before
its write lands. A write stamped at T can land after another stamped at T+5 ms has already been
delivered, so "everything after the last id I saw" would skip it. A cursor therefore holds two
things: ``after`` (the last id the client holds) and ``floor_ms`` (a time before which the client is
known to miss nothing). ``sync`` replays everything stored with an id later than ``floor_ms``; ids
up to ``after`` may be repeats, which clients drop by id. A live frame's floor sits the overlap
window (default 30 s, far more than a bounded DynamoDB write takes) before its own id; a cursor
from ``synced`` moves the floor up to what that sync proved complete, so paging always advances.

The arithmetic ``sync`` does with cursors lives here too (``settled_ms``, ``advance``,
``replay_positions``, ``settle``, ``held_before_latest``, ``is_from_future``, ``is_complete``): the
service reads the store and posts frames, these functions say where each frame leaves the client.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TIME_CHARS = 10
_RANDOM_CHARS = 16
_CURSOR_RE = re.compile(r"^c1\.([0-9A-HJKMNP-TV-Z]{26})\.([0-9a-z]{1,12})$")
_MAX_TIME_MS = (1 << 48) - 1
_DAY_MS = 86_400_000
# A cursor stamped further ahead of the server's clock than this is not one the server issued.
FUTURE_TOLERANCE_MS = 60_000


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _decode(text: str) -> int:
    number = 0
    for char in text:
        number = number * 32 + _ALPHABET.index(char)
    return number


class IdGenerator:
    """Time-ordered ids, strictly increasing within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new_id(self, now_ms: int) -> str:
        with self._lock:
            if now_ms <= self._last_ms:
                # Same (or an earlier) millisecond: keep the time, step the random part.
                now_ms = self._last_ms
                random_part = self._last_random + 1
            else:
                random_part = int.from_bytes(os.urandom(10), "big") >> 1  # headroom to step
            self._last_ms, self._last_random = now_ms, random_part
        return _encode(now_ms, _TIME_CHARS) + _encode(random_part, _RANDOM_CHARS)


def id_time_ms(message_id: str) -> int:
    """The millisecond a message id was stamped."""
    return _decode(message_id[:_TIME_CHARS])


def lowest_id_at(time_ms: int) -> str:
    """The smallest possible id stamped at ``time_ms``: query bound for "from this time on"."""
    return _encode(max(0, min(time_ms, _MAX_TIME_MS)), _TIME_CHARS) + "0" * _RANDOM_CHARS


@dataclass(frozen=True)
class Cursor:
    """Where a client is: it holds ``after`` and misses nothing stamped before ``floor_ms``."""

    after: str
    floor_ms: int

    def encode(self) -> str:
        return f"c1.{self.after}.{_base36(self.floor_ms)}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor, or None when ``text`` is not one this server issued."""
        match = _CURSOR_RE.fullmatch(text)
        if match is None:
            return None
        floor_ms = int(match.group(2), 36)
        if floor_ms > id_time_ms(match.group(1)):
            return None  # a floor past the position is never issued
        return cls(after=match.group(1), floor_ms=floor_ms)

    @classmethod
    def for_live(cls, message_id: str, overlap_ms: int) -> Cursor:
        """The cursor sent with a live ``message`` or ``ack`` frame."""
        return cls(after=message_id, floor_ms=max(0, id_time_ms(message_id) - overlap_ms))


def settled_ms(now_ms: int, overlap_ms: int) -> int:
    """The time before which every write has landed: a write stamped earlier than ``now`` minus
    the overlap window is stored by now (a bounded DynamoDB write takes far less)."""
    return now_ms - overlap_ms


def advance(held: Cursor, message_id: str, settled: int) -> Cursor:
    """The cursor of a client holding ``held`` and then ``message_id`` (delivered in storage order):
    the floor rises to that id's time, but never past ``settled``: a write stamped before the id
    may still be landing, and a floor above it would skip that write for good."""
    return Cursor(
        after=max(held.after, message_id),
        floor_ms=max(held.floor_ms, min(id_time_ms(message_id), settled)),
    )


def replay_positions(held: Cursor, message_ids: list[str], settled: int) -> list[Cursor]:
    """The cursor after each replayed message, in order: each is safe to resume from if the socket
    drops right after that message."""
    positions = []
    for message_id in message_ids:
        held = advance(held, message_id, settled)
        positions.append(held)
    return positions


def settle(held: Cursor, settled: int) -> Cursor:
    """Where a sync that found nothing more leaves the client: nothing else exists up to the
    settled time, so the next sync need not look before it."""
    return advance(held, max(held.after, lowest_id_at(settled)), settled)


def held_before_latest(first_id: str | None, settled: int) -> Cursor:
    """What a client asking for recent history only (no ``since``) holds before the first message
    replayed: "everything" stamped before it. With no message at all, everything before ``settled``."""
    first_ms = id_time_ms(first_id) if first_id is not None else settled
    return Cursor(after=lowest_id_at(first_ms), floor_ms=first_ms)


def is_from_future(cursor: Cursor, now_ms: int, tolerance_ms: int = FUTURE_TOLERANCE_MS) -> bool:
    """A cursor whose position or floor lies past ``now`` (beyond clock skew) was never issued."""
    return max(cursor.floor_ms, id_time_ms(cursor.after)) > now_ms + tolerance_ms


def is_complete(cursor: Cursor, now_ms: int, retention_days: int) -> bool:
    """False when messages after the cursor's floor may be past retention, and so gone."""
    return cursor.floor_ms >= now_ms - retention_days * _DAY_MS


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
