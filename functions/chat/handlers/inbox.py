"""inbox: the caller's conversations, each with its last message and unread count."""

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def inbox(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    Conversations(service).inbox(caller)


handler = websocket_route(inbox)
