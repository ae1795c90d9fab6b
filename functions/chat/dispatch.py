"""Hands chunks of a large fan-out to worker invocations (asynchronous Lambda invokes).

One Lambda posts a few thousand frames a second at most (signing and sending is CPU work); API
Gateway takes 10,000 management calls a second per account. Spreading a big audience over several
worker invocations running side by side closes that gap, and keeps the sender's Lambda (and its
29-second integration timeout) out of the long part of the fan-out.

A worker runs at least once, not exactly once: Lambda retries an asynchronous invocation that fails
(twice, as the stack configures it: ``infra/functions.py``), and its queue may hand the same event
over twice even without a failure. That is safe: a worker stores nothing; a ``message`` frame
carries the id of a message already stored, and clients deduplicate messages by id, so a chunk of
messages posted again shows nothing twice; a ``presence`` frame carries the time of the change
(``at``, docs/protocol.md), and clients ignore one older than what they already applied. What keeps
repeats rare: a worker does not fail once its posts are made (a pruning
failure is logged, not raised: ``ChatService._deliver``). A chunk that still fails every attempt
lands in the stack's on-failure queue, with an alarm on it; its recipients get the message from
``sync``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chat import aws_clients
from chat.boto_config import ONE_CALL
from chat.observability import logger
from chat.store import ConnectionRecord

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


@dataclass(frozen=True)
class FanoutJob:
    """What one worker invocation delivers: one frame to a chunk of connections."""

    endpoint: str
    frame: str
    connections: list[ConnectionRecord]

    def to_event(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "frame": self.frame,
            "connections": [[c.connection_id, c.username] for c in self.connections],
        }

    @classmethod
    def from_event(cls, event: Any) -> FanoutJob:
        """The job an event describes; ``ValueError`` for anything else (it cannot be delivered,
        so it fails every attempt and ends in the on-failure queue, where it can be looked at)."""
        try:
            endpoint, frame, connections = event["endpoint"], event["frame"], event["connections"]
            if not (isinstance(endpoint, str) and isinstance(frame, str) and isinstance(connections, list)):
                raise TypeError("endpoint, frame and connections have the wrong types")
            return cls(
                endpoint=endpoint,
                frame=frame,
                connections=[ConnectionRecord(str(cid), str(user)) for cid, user in connections],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a fan-out job: {exc!r}") from exc


class FanoutDispatcher:
    def __init__(self, function_name: str, client: LambdaClient | None = None) -> None:
        self.function_name = function_name
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            self._client = aws_clients.client("lambda", config=ONE_CALL)
        return self._client

    def dispatch(self, endpoint: str, frame: str, connections: Sequence[ConnectionRecord]) -> bool:
        """Queue one worker invocation; False when it could not be queued (deliver it yourself)."""
        job = FanoutJob(endpoint=endpoint, frame=frame, connections=list(connections))
        try:
            self.client.invoke(
                FunctionName=self.function_name,
                # Lambda queues it durably and runs it at least once (see the module docstring).
                InvocationType="Event",
                Payload=json.dumps(job.to_event()).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("fan-out worker not invoked; delivering inline", error=str(exc))
            return False
        return True
