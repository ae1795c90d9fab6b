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


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
