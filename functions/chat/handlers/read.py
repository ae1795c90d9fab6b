"""read: record how far the caller has read a conversation, and tell their other devices and the partner."""

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def read(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    Conversations(service).read(caller, parse_json_object(event.body))


handler = websocket_route(read)
