"""One WebSocket connection of one user, recording every frame it receives (with when).

A reader thread drains the socket into ``received`` as frames arrive, so a check can wait for a
frame on one session while frames pile up on the others, and can later ask what else a session got.
Waits are bounded: a check fails with a clear reason instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

Frame = dict[str, Any]
Matcher = Callable[[Frame], bool]
OPEN_TIMEOUT_S = 30.0
# The server's frames may be as large as a message may be (128 KB); the client accepts some more.
CLIENT_MAX_SIZE = 1024 * 1024


class CheckFailed(AssertionError):
    """A check's expectation did not hold; the message says why, in one line."""


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when it arrived
    raw: str | bytes
    frame: Frame | None  # the JSON object, when it is one


def connect_url(websocket_url: str, token: str | None) -> str:
    """The WebSocket URL with ``?token=`` appended, as every client builds it."""
    if token is None:
        return websocket_url
    separator = "&" if "?" in websocket_url else "?"
    return f"{websocket_url}{separator}token={quote(token, safe='')}"


def refused_status(url: str, timeout: float = OPEN_TIMEOUT_S) -> int | None:
    """The HTTP status that refused the handshake, or None when a connection opened."""
    try:
        with connect(url, open_timeout=timeout, compression=None):
            return None
    except InvalidStatus as refused:
        return int(refused.response.status_code)


class Session:
    """An open connection: ``send`` frames, ``wait_for`` what should arrive, look back at ``received``."""

    def __init__(self, name: str, username: str, url: str) -> None:
        self.name = name
        self.username = username
        self.received: list[Received] = []
        self.close_code: int | None = None
        self._changed = threading.Condition()
        self._scope = contextlib.ExitStack()
        self._socket: ClientConnection = self._scope.enter_context(
            # No compression: sizes sent are the sizes API Gateway counts. API Gateway does not
            # ping, and pings are not data frames, so keep-alive is left to the protocol's ping.
            connect(
                url,
                open_timeout=OPEN_TIMEOUT_S,
                compression=None,
                max_size=CLIENT_MAX_SIZE,
                ping_interval=None,
                close_timeout=5,
            )
        )
        self._reader = threading.Thread(target=self._read, name=f"session-{name}", daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        return f"Session({self.name})"

    @property
    def open(self) -> bool:
        return self.close_code is None and self._reader.is_alive()

    def send(self, frame: Frame | str) -> None:
        self._socket.send(frame if isinstance(frame, str) else json.dumps(frame))

    def send_fragments(self, fragments: Iterable[str]) -> None:
        """One message in several frames (a continuation frame per fragment)."""
        self._socket.send(fragments)

    def frames(self, matches: Matcher | None = None, since: float = 0.0) -> list[Frame]:
        """The JSON frames received so far (after ``since``) that ``matches``."""
        with self._changed:
            return [
                r.frame
                for r in self.received
                if r.frame is not None and r.at >= since and (matches is None or matches(r.frame))
            ]

    def wait_for(self, matches: Matcher, what: str, timeout: float, since: float = 0.0) -> Frame:
        """The first frame (received after ``since``) that ``matches``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for received in self.received:
                    if received.at >= since and received.frame is not None and matches(received.frame):
                        return received.frame
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    break
                self._changed.wait(left)
        closed = f" (socket closed with {self.close_code})" if self.close_code is not None else ""
        raise CheckFailed(f"{self.name}: no {what} within {timeout:.0f} s{closed}")

    def arrivals(self, matches: Matcher, since: float = 0.0) -> list[float]:
        """When each frame (received after ``since``) that ``matches`` arrived, by time.monotonic()."""
        with self._changed:
            return [r.at for r in self.received if r.frame is not None and r.at >= since and matches(r.frame)]

    def wait_closed(self, timeout: float) -> int | None:
        """The close code the server sent, once the socket is closed (None if it stays open)."""
        self._reader.join(timeout)
        return self.close_code if not self._reader.is_alive() else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._scope.close()
        self._reader.join(10)

    def _read(self) -> None:
        try:
            for raw in self._socket:
                self._record(raw)
        except ConnectionClosed:
            pass
        finally:
            close = self._socket.protocol.close_rcvd
            with self._changed:
                self.close_code = close.code if close is not None else 1006
                self._changed.notify_all()

    def _record(self, raw: str | bytes) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        with self._changed:
            self.received.append(
                Received(time.monotonic(), raw, parsed if isinstance(parsed, dict) else None)
            )
            self._changed.notify_all()
