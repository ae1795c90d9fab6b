"""$default: frames no route matched: the bare text "ping" gets pong, the rest an error frame."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService


def unmatched_frame(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.default(caller, event.decoded_body)


handler = websocket_route(unmatched_frame)
