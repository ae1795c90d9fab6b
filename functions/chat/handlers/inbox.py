"""inbox: the caller's conversations, each with its last message and unread count."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService


def inbox(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    Conversations(service).inbox(caller)


handler = websocket_route(inbox)
