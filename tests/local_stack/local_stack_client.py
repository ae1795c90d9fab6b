"""Look-ups in the local stack's recorded events, for its tests (the client is tests.support.chat_client)."""

from __future__ import annotations

import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import ClientConnection

from local_stack.testing import RunningStack

Frame = dict[str, Any]

# The presence grace (seconds) of the folder's shared stack: short, so offline frames come soon.
PRESENCE_GRACE = 2


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
