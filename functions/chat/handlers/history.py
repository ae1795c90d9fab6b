"""history: older messages of one conversation, oldest first, as many as fit one frame."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService


def history(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    Conversations(service).history(caller, parse_json_object(event.body))


handler = websocket_route(history)
