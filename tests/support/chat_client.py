"""The tests' synchronous WebSocket client of the chat, over real sockets: it keeps every frame it
received and the latest cursor it holds, as the protocol asks a resuming client to. The local
stack's, the reliability and the client tests all use it (the benchmarks keep their own asyncio
one, built for thousands of connections)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local_stack.testing import RunningStack, User

Frame = dict[str, Any]
OPEN_TIMEOUT_S = 30


def new_client_msg_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"


def handshake_status(url: str) -> int:
    """The HTTP status a refused handshake got (AssertionError when it was accepted)."""
    try:
        with connect(url, open_timeout=OPEN_TIMEOUT_S):
            pass
    except InvalidStatus as refused:
        return refused.response.status_code
    raise AssertionError("the handshake was accepted")


class ChatClient:
    """One connection of one user."""

    def __init__(self, username: str, url: str) -> None:
        self.username = username
        self._scope = contextlib.ExitStack()
        # Frames queue up unread while a test reads another client (API Gateway sends no pings).
        socket = connect(url, open_timeout=OPEN_TIMEOUT_S, max_queue=None, ping_interval=None)
        self.socket: ClientConnection = self._scope.enter_context(socket)
        self.frames: list[Frame] = []
        self.cursor: str | None = None

    @classmethod
    def connect(cls, stack: RunningStack, user: User) -> ChatClient:
        return cls(user.username, stack.connect_url(user.access_token))

    def send(self, frame: Frame | str | bytes) -> None:
        self.socket.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    def say(self, text: str, **fields: Any) -> Frame:
        """Send a message with a fresh ``clientMsgId`` (unless given); its ack."""
        client_msg_id = fields.pop("clientMsgId", None) or new_client_msg_id()
        self.send({"action": "sendmessage", "text": text, "clientMsgId": client_msg_id, **fields})
        return self.wait_type("ack", clientMsgId=client_msg_id)

    def receive(self, timeout: float) -> Frame:
        frame: Frame = json.loads(self.socket.recv(timeout=timeout))
        self.frames.append(frame)
        if frame.get("type") in ("message", "ack", "synced"):
            self.cursor = frame["cursor"]
        return frame

    def wait_for(self, matches: Callable[[Frame], bool], timeout: float = 10.0, *, after: int = 0) -> Frame:
        """The first frame from index ``after`` on, received already or within ``timeout``, matching."""
        for frame in self.frames[after:]:
            if matches(frame):
                return frame
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.receive(left)
            except TimeoutError:
                break
            if matches(frame):
                return frame
        raise AssertionError(f"no matching frame within {timeout} s; received {self.frames[-20:]}")

    def wait_type(self, kind: str, timeout: float = 10.0, **fields: Any) -> Frame:
        return self.wait_for(
            lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()), timeout
        )

    def wait_for_message(self, text: str, timeout: float = 10.0) -> Frame:
        """The first ``message`` frame with this text."""
        return self.wait_type("message", timeout, text=text)

    def next_answer(self, timeout: float = 10.0) -> Frame:
        """The next frame that answers this connection (not a message or presence from others)."""
        return self.wait_for(
            lambda f: f.get("type") not in ("message", "presence"), timeout, after=len(self.frames)
        )

    def drain(self, quiet_for: float = 0.3) -> list[Frame]:
        """Everything that arrives until nothing has for ``quiet_for`` seconds."""
        drained = []
        while True:
            try:
                drained.append(self.receive(quiet_for))
            except (TimeoutError, ConnectionClosed):
                return drained

    def sync_all(self, since: str | None, limit: int = 100, patience: float = 10.0) -> list[Frame]:
        """``sync`` until ``more`` is false; the message frames received meanwhile, in order.

        A ``synced`` that does not come within ``patience`` (its post failed) is asked for again
        from the latest cursor held, as a resuming client does.
        """
        received: list[Frame] = []
        while True:
            start = len(self.frames)
            self.send({"action": "sync", "limit": limit} | ({"since": since} if since else {}))
            try:
                synced = self.wait_for(lambda f: f.get("type") == "synced", patience, after=start)
            except AssertionError:
                received += [f for f in self.frames[start:] if f.get("type") == "message"]
                since = self.cursor or since
                continue
            received += [f for f in self.frames[start:] if f.get("type") == "message"]
            since = synced["cursor"]
            if not synced["more"]:
                return received

    def closed_code(self, timeout: float = 10.0) -> int | None:
        """The close code once the server has closed the socket."""
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.receive(left)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        raise AssertionError("the socket stayed open")

    def close(self) -> None:
        self._scope.close()


OpenClient = Callable[[User], ChatClient]
