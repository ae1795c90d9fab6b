"""$connect: record the connection; the authorizer has already proved whose it is."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import connection_route
from chat.service import Caller, ChatService


def connect(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.connect(caller)


handler = connection_route(connect)
