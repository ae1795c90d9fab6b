"""history: older messages of one conversation, oldest first, as many as fit one frame."""

from chat.conversations import Conversations
from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def history(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    Conversations(service).history(caller, parse_json_object(event.body))


handler = websocket_route(history)
