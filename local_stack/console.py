"""What the local stack prints: the URLs first, then one line per connect, route call and disconnect.

    12:00:01  alice        L0SM9cOFvHcCIhw=  $connect       200     38 ms
    12:00:02  alice        L0SM9cOFvHcCIhw=  sendmessage    200     12 ms
    12:00:09  alice        L0SM9cOFvHcCIhw=  $disconnect    200      6 ms  1001
    12:00:10  -            Ye5sXk2WoAMCJ0Q=  refused        401            no token in the query string

A failed call adds the exception's type and message, so a handler bug shows where it happened.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import TextIO

from local_stack.lambdas import Invocation


class Console:
    """Writes the stack's readable lines to a stream (stdout by default); thread-safe."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self._stream = stream or sys.stdout
        self._enabled = enabled
        self._lock = threading.Lock()

    def urls(self, urls: Mapping[str, str]) -> None:
        width = max(len(name) for name in urls)
        self._write("")
        for name, url in urls.items():
            self._write(f"  {name:<{width}}  {url}")
        self._write("")

    def note(self, text: str) -> None:
        self._write(text)

    def call(
        self, user: str, connection_id: str, route: str, status: int, call: Invocation, detail: str = ""
    ) -> None:
        failure = f"{type(call.error).__name__}: {call.error}" if call.error is not None else ""
        self._line(user, connection_id, route, str(status), f"{call.duration_ms:5.0f} ms", detail, failure)

    def note_call(self, user: str, connection_id: str, what: str, detail: str) -> None:
        """A line in the calls' columns for something that is no call (the inspector's actions)."""
        self._line(user, connection_id, what, "", detail)

    def refused(self, connection_id: str, status: int, why: str) -> None:
        self._line("-", connection_id, "refused", str(status), "", why)

    def _line(self, user: str, connection_id: str, route: str, status: str, *rest: str) -> None:
        when = datetime.now().strftime("%H:%M:%S")
        tail = "  ".join(part for part in rest if part)
        self._write(f"{when}  {user:<12} {connection_id:<17} {route:<14} {status:>3}  {tail}".rstrip())

    def _write(self, line: str) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
