"""$disconnect: forget the connection (API Gateway sends this best effort; TTLs and 410s cover misses)."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import connection_route
from chat.service import Caller, ChatService


def disconnect(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.disconnect(caller)


handler = connection_route(disconnect)
