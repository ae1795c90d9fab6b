"""sendmessage: store, acknowledge and deliver a public or private message."""

from chat.handlers.route import websocket_route
from chat.protocol import parse_json_object
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent


def send_message(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
    service.send_message(caller, parse_json_object(event.body), frame_id=event.request_context.message_id)


handler = websocket_route(send_message)
