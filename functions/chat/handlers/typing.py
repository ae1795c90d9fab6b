"""typing: tell the other user the caller is typing (at most once in 3 seconds)."""

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def typing(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    Conversations(service).typing(caller, parse_json_object(event.body))


handler = websocket_route(typing)
