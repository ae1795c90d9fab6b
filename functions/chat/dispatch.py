"""Hands chunks of a large fan-out to worker invocations (asynchronous Lambda invokes).

One Lambda posts a few thousand frames a second at most (signing and sending is CPU work); API
Gateway takes 10,000 management calls a second per account. Spreading a big audience over several
worker invocations running side by side closes that gap, and keeps the sender's Lambda (and its
29-second integration timeout) out of the long part of the fan-out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.observability import logger
from chat.store import Connection

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


@dataclass(frozen=True)
class FanoutJob:
    """What one worker invocation delivers: one frame to a chunk of connections."""

    endpoint: str
    frame: str
    connections: list[Connection]

    def to_event(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "frame": self.frame,
            "connections": [[c.connection_id, c.username] for c in self.connections],
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> FanoutJob:
        return cls(
            endpoint=str(event["endpoint"]),
            frame=str(event["frame"]),
            connections=[Connection(str(cid), str(user)) for cid, user in event["connections"]],
        )


class FanoutDispatcher:
    def __init__(self, function_name: str, client: LambdaClient | None = None) -> None:
        self.function_name = function_name
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            config = Config(
                connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
            )
            self._client = boto3.client("lambda", config=config)
        return self._client

    def dispatch(self, endpoint: str, frame: str, connections: Sequence[Connection]) -> bool:
        """Queue one worker invocation; False when it could not be queued (deliver it yourself)."""
        job = FanoutJob(endpoint=endpoint, frame=frame, connections=list(connections))
        try:
            self.client.invoke(
                FunctionName=self.function_name,
                InvocationType="Event",  # Lambda queues it durably and retries it on failure
                Payload=json.dumps(job.to_event()).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("fan-out worker not invoked; delivering inline", error=str(exc))
            return False
        return True
