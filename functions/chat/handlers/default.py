"""$default: frames no route matched: the bare text "ping" gets pong, the rest an error frame."""

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def unmatched_frame(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.default(caller, event.decoded_body)


handler = websocket_route(unmatched_frame)
