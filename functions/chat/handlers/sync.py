"""sync: replay what the user missed since a cursor, oldest first."""

from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def sync(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.sync(caller, parse_json_object(event.body))


handler = websocket_route(sync)
