"""$disconnect: forget the connection (API Gateway sends this best effort; TTLs and 410s cover misses)."""

from chat.handlers.route import connection_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def disconnect(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.disconnect(caller)


handler = connection_route(disconnect)
