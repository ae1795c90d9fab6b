"""$connect: record the connection; the authorizer has already proved whose it is."""

from chat.handlers.route import connection_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def connect(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.connect(caller)


handler = connection_route(connect)
