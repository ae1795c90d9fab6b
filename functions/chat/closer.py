"""Closes a connection through the management API (``DELETE @connections/{id}``).

Used only for a connection that keeps flooding after being told it is rate limited, so a plain
SDK client, built at the first close, is enough. API Gateway then runs ``$disconnect`` for it,
which forgets the connection as for any close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chat import aws_clients
from chat.boto_config import bounded
from chat.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

_CLIENT_CONFIG = bounded(connect_s=1, read_s=3, attempts=2)


class ConnectionCloser:
    def __init__(self, endpoint: str, *, region: str) -> None:
        self.endpoint = endpoint
        self.region = region
        self._client: ApiGatewayManagementApiClient | None = None

    def close(self, connection_id: str) -> bool:
        """True when API Gateway closed it (or it was gone already); a failure is logged, not raised."""
        if self._client is None:
            self._client = aws_clients.client(
                "apigatewaymanagementapi",
                endpoint_url=self.endpoint,
                region_name=self.region,
                config=_CLIENT_CONFIG,
            )
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "GoneException":
                return True
            logger.warning("could not close a flooding connection", error=str(exc))
            return False
        except BotoCoreError as exc:
            logger.warning("could not close a flooding connection", error=str(exc))
            return False
        return True
