"""Asks API Gateway whether a connection still exists: GET @connections/{id} (410 when it is gone).

Used for the few connections a presence check suspects, never on a hot path, so a plain SDK client is
enough here; the notifier (``chat.notifier``) is the fast path for posting frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import aws_clients
from chat.boto_config import bounded

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient


class ConnectionProbe:
    def __init__(
        self, endpoint: str, *, region: str, client: ApiGatewayManagementApiClient | None = None
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self._client = client

    @property
    def client(self) -> ApiGatewayManagementApiClient:
        if self._client is None:
            config = bounded(connect_s=2, read_s=3, attempts=3)
            self._client = aws_clients.client(
                "apigatewaymanagementapi", endpoint_url=self.endpoint, region_name=self.region, config=config
            )
        return self._client

    def exists(self, connection_id: str) -> bool:
        """False only on API Gateway's 410 GoneException; any other failure raises DependencyError."""
        answer = aws_clients.unless_error(
            "GoneException",
            "ask whether a connection exists",
            lambda: self.client.get_connection(ConnectionId=connection_id),
        )
        return answer is not None
