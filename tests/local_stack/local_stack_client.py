"""A plain WebSocket client for the tests, and look-ups in the stack's recorded events."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import ClientConnection, connect

from local_stack.testing import RunningStack, User

Frame = dict[str, Any]

# The presence grace (seconds) of the folder's shared stack: short, so offline frames come soon.
PRESENCE_GRACE = 2


class Client:
    """One WebSocket connection of one user, keeping every frame it received."""

    def __init__(self, stack: RunningStack, user: User) -> None:
        self.user = user
        self._scope = contextlib.ExitStack()
        self.socket: ClientConnection = self._scope.enter_context(
            connect(stack.connect_url(user.access_token), open_timeout=30)
        )
        self.frames: list[Frame] = []

    def send(self, frame: Frame | str) -> None:
        self.socket.send(frame if isinstance(frame, str) else json.dumps(frame))

    def wait_for(self, matches: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The first frame, received already or within ``timeout``, that ``matches``."""
        for frame in self.frames:
            if matches(frame):
                return frame
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.socket.recv(timeout=left))
            except TimeoutError:
                break
            self.frames.append(frame)
            if matches(frame):
                return frame
        raise AssertionError(f"no matching frame within {timeout} s; received {self.frames}")

    def wait_type(self, kind: str, timeout: float = 10.0, **fields: Any) -> Frame:
        return self.wait_for(
            lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()), timeout
        )

    def drain(self, quiet_for: float = 0.3) -> list[Frame]:
        """Everything that arrives until nothing has for ``quiet_for`` seconds."""
        with_timeout = []
        while True:
            try:
                frame = json.loads(self.socket.recv(timeout=quiet_for))
            except (TimeoutError, ConnectionClosed):
                return with_timeout
            self.frames.append(frame)
            with_timeout.append(frame)

    def close(self) -> None:
        self._scope.close()


def connection_id_of(stack: RunningStack, username: str) -> str:
    """The id of ``username``'s most recent connection, from the recorded ``$connect`` events."""
    for entry in reversed(stack.recorded_events()):
        context = entry["event"]["requestContext"]
        if entry["kind"] == "$connect" and context.get("authorizer", {}).get("username") == username:
            return str(context["connectionId"])
    raise AssertionError(f"no $connect recorded for {username}")


def events_of(stack: RunningStack, connection_id: str, *, wait_for_kind: str | None = None) -> list[Frame]:
    """The recorded events of one connection (waiting up to 5 s for one of ``wait_for_kind``)."""
    deadline = time.monotonic() + 5
    while True:
        found = [
            entry
            for entry in stack.recorded_events()
            if entry["event"]["requestContext"]["connectionId"] == connection_id
        ]
        if wait_for_kind is None or any(e["kind"] == wait_for_kind for e in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {wait_for_kind} event for {connection_id}: {found}")
        time.sleep(0.05)


def close_frame_after_frames(socket: ClientConnection, timeout: float = 10.0) -> Close:
    """The close frame the server sends, skipping whatever frames (presence...) come before it."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            socket.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"closed without a close frame: {closed}"
        return closed.rcvd
