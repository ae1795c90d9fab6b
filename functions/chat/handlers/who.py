"""who: the users online now."""

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def who(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.who(caller)


handler = websocket_route(who)
