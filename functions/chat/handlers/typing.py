"""typing: tell the other user the caller is typing (at most once in 3 seconds)."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService


def typing(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    Conversations(service).typing(caller, parse_json_object(event.body))


handler = websocket_route(typing)
