"""The presence grace's delayed checks: scheduled on an SQS queue with a delivery delay, read back
by the presence-check worker (``chat.handlers.presence``).

A check names a user, the connection whose close scheduled it and the API endpoint to tell; the
worker decides everything from the state it reads then, so a check delivered late, early or twice
(SQS delivers at least once) does no harm.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from chat import aws_clients
from chat.boto_config import bounded
from chat.config import MAX_PRESENCE_GRACE_SECONDS
from chat.observability import logger


class SqsClient(Protocol):
    """The one SQS call made here (typed without pulling in the SQS stubs)."""

    def send_message(self, *, QueueUrl: str, MessageBody: str, DelaySeconds: int) -> object: ...


@dataclass(frozen=True)
class PresenceCheck:
    """Look again at ``username``'s presence, suspecting ``connection_id`` (closed, maybe not recorded)."""

    endpoint: str
    username: str
    connection_id: str

    def to_body(self) -> str:
        return json.dumps(
            {"endpoint": self.endpoint, "username": self.username, "connectionId": self.connection_id}
        )

    @classmethod
    def from_body(cls, body: str) -> PresenceCheck:
        """A check from a queue message body; ValueError/KeyError/TypeError when it is not one."""
        data = json.loads(body)
        fields = (data["endpoint"], data["username"], data["connectionId"])
        if not all(isinstance(value, str) and value for value in fields):
            raise ValueError("a presence check needs endpoint, username and connectionId strings")
        return cls(endpoint=fields[0], username=fields[1], connection_id=fields[2])


class PresenceScheduler:
    """Sends each check to the queue, delayed: SQS holds it back ``delay`` seconds (at most 900)."""

    def __init__(self, queue_url: str, client: SqsClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SqsClient:
        if self._client is None:
            config = bounded(connect_s=1, read_s=3, attempts=3)
            self._client = cast(SqsClient, aws_clients.client("sqs", config=config))
        return self._client

    def schedule(self, check: PresenceCheck, *, delay_seconds: float) -> bool:
        """Queue one check; False when it could not be queued (the caller then decides at once)."""
        delay = min(MAX_PRESENCE_GRACE_SECONDS, max(0, math.ceil(delay_seconds)))  # never early
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=check.to_body(), DelaySeconds=delay)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("presence check not scheduled", error=str(exc))
            return False
        return True
