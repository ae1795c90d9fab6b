"""ping: pong (clients ping within API Gateway's 10-minute idle timeout)."""

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def ping(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.ping(caller)


handler = websocket_route(ping)
