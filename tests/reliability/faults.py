"""Faults to inject between the real handlers and their dependencies, and ways to look at the result.

- ``DynamoDbThrottle``: the store's own boto3 client answers an operation with DynamoDB's throttling
  error a number of times, on the wire (botocore's retry logic sees a real 400 and decides);
- ``HungConnection``: the management-API double never answers posts to one connection until
  released;
- ``stored_messages`` and ``sync_all`` read what is durable and what a resuming client would get.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.support.feeds import feed_items
from tests.support.management_double import ManagementApiDouble
from tests.support.world import ChatWorld

Frame = dict[str, Any]


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


class DynamoDbThrottle:
    """Answer ``operation`` with a throttling error the next ``times`` attempts (retries included)."""

    def __init__(self, client: Any, operation: str, code: str, times: int) -> None:
        self.code = code
        self.remaining = times
        self.attempts = 0
        self._lock = threading.Lock()
        client.meta.events.register(f"before-send.dynamodb.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            self.attempts += 1
            if self.remaining <= 0:
                return None  # send it for real
            self.remaining -= 1
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "Rate exceeded"}
        )
        headers = {"x-amzn-ErrorType": self.code, "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Body(body.encode()))


class HungConnection:
    """Posts to one connection are held, unanswered, until ``release()``; the rest are served."""

    def __init__(self, double: ManagementApiDouble, connection_id: str) -> None:
        self.connection_id = connection_id
        self.held = threading.Event()
        self._released = threading.Event()
        self._answer = double._answer_post
        self._double = double
        double._answer_post = self._answer_post  # type: ignore[method-assign]

    def _answer_post(self, connection_id: str, body: bytes) -> tuple[int, str | None]:
        if connection_id == self.connection_id and not self._released.is_set():
            self.held.set()
            self._released.wait()
        return self._answer(connection_id, body)

    def release(self) -> None:
        self._released.set()
        self._double._answer_post = self._answer  # type: ignore[method-assign]


def stored_messages(world: ChatWorld, feed: str) -> list[dict[str, Any]]:
    """Every message item in one feed of the Messages table, oldest first."""
    return feed_items(world.dynamodb, world.tables["Messages"], feed)


def stored_texts(world: ChatWorld, feed: str = "public") -> list[str]:
    return [item["text"]["S"] for item in stored_messages(world, feed)]


def received_texts(world: ChatWorld, connection_id: str) -> list[str]:
    return [frame["text"] for frame in world.frames(connection_id, "message")]


def sync_all(world: ChatWorld, connection_id: str, username: str, since: str | None = None) -> list[Frame]:
    """Call sync until ``more`` is false; the message frames it replayed."""
    replayed: list[Frame] = []
    while True:
        before = len(world.frames(connection_id))
        world.send(
            connection_id, username, {"action": "sync", "limit": 500} | ({"since": since} if since else {})
        )
        new = world.frames(connection_id)[before:]
        replayed += [frame for frame in new if frame["type"] == "message"]
        [synced] = [frame for frame in new if frame["type"] == "synced"]
        since = synced["cursor"]
        if not synced["more"]:
            return replayed
