"""A user on a plain WebSocket: what the simplest client of the protocol looks like."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

from clients.cli.auth import CognitoAuth
from clients.cli.config import ChatConfig
from clients.cli.session import url_with_token

PASSWORD = "password123"  # meets the pool's policy: 8+ characters, lower-case letters and digits


class Peer:
    """A user on a plain WebSocket, the way the simplest client would be written."""

    def __init__(self, config: ChatConfig, username: str) -> None:
        self.username = username
        token = CognitoAuth(config, username, PASSWORD).access_token()
        url = url_with_token(config.websocket_url, token)
        self._exit = contextlib.ExitStack()
        self.socket: ClientConnection = self._exit.enter_context(connect(url))
        self.frames: list[dict[str, Any]] = []

    def send(self, frame: dict[str, Any]) -> None:
        self.socket.send(json.dumps(frame))

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        """The first frame (already received or arriving within ``timeout``) that ``matches``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if matches(frame):
                    return frame
            seen = len(self.frames)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.username} got no matching frame; got {self.frames}")
            try:
                self.frames.append(json.loads(self.socket.recv(timeout=remaining)))
            except TimeoutError:
                continue

    def wait_for_message(self, text: str, timeout: float = 10) -> dict[str, Any]:
        def is_it(frame: dict[str, Any]) -> bool:
            return frame.get("type") == "message" and frame.get("text") == text

        return self.wait_for(is_it, timeout)

    def close(self) -> None:
        self._exit.close()
