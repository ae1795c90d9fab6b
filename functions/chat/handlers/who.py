"""who: the users online now."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService


def who(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.who(caller)


handler = websocket_route(who)
