"""The API Gateway management API adapter: post frames to connections, one or many at a time.

Fan-out is best effort per recipient: a 410 marks the connection gone (the caller prunes it), a
429 or 5xx is retried with backoff by botocore's standard retry mode, and one failure never stops
delivery to the others. Posts run on a bounded pool of threads whose size matches the HTTP
connection pool, so no thread waits for a socket.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


@dataclass
class FanoutReport:
    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, connection_id: str, outcome: Delivery) -> None:
        if outcome is Delivery.DELIVERED:
            self.delivered += 1
        elif outcome is Delivery.GONE:
            self.gone.append(connection_id)
        else:
            self.failed.append(connection_id)


def management_endpoint(*, api_id: str, region: str, stage: str) -> str:
    """The management API of a WebSocket API. Built from the API id, not the event's domain name:
    behind a custom domain the domain name does not serve @connections."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


class Notifier:
    def __init__(
        self, endpoint: str, *, workers: int, client: ApiGatewayManagementApiClient | None = None
    ) -> None:
        self.endpoint = endpoint
        self.workers = workers
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        with self._lock:
            if self._client is None:
                config = Config(
                    connect_timeout=2,
                    read_timeout=5,
                    retries={"mode": "standard", "max_attempts": 5},
                    max_pool_connections=self.workers,
                )
                self._client = boto3.client(
                    "apigatewaymanagementapi", endpoint_url=self.endpoint, config=config
                )
            return self._client

    def send(self, connection_id: str, frame: str) -> Delivery:
        """Post one frame; never raises."""
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=frame.encode())
        except ClientError as exc:
            # GoneException is a modeled ClientError subclass: check the code, not the class order.
            if exc.response.get("Error", {}).get("Code") == "GoneException":
                return Delivery.GONE
            logger.warning("post failed", connection_id=connection_id, error=str(exc))
            return Delivery.FAILED
        except BotoCoreError as exc:
            logger.warning("post failed", connection_id=connection_id, error=str(exc))
            return Delivery.FAILED
        return Delivery.DELIVERED

    def send_many(self, connection_ids: Iterable[str], frame: str) -> FanoutReport:
        """Post the same frame to many connections concurrently, on at most ``workers`` threads."""
        report = FanoutReport()
        ids = list(connection_ids)
        if len(ids) <= 1:
            for connection_id in ids:
                report.add(connection_id, self.send(connection_id, frame))
            return report
        with ThreadPoolExecutor(max_workers=min(self.workers, len(ids))) as pool:
            for connection_id, outcome in zip(
                ids, pool.map(lambda cid: self.send(cid, frame), ids), strict=True
            ):
                report.add(connection_id, outcome)
        return report
