"""sync: replay what the user missed since a cursor, oldest first."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService


def sync(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.sync(caller, parse_json_object(event.body))


handler = websocket_route(sync)
