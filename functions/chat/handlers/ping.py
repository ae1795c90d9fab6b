"""ping: pong (clients ping within API Gateway's 10-minute idle timeout)."""

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from chat.handlers.route import websocket_route
from chat.service import Caller, ChatService


def ping(service: ChatService, caller: Caller, event: APIGatewayWebSocketEvent) -> None:
    service.ping(caller)


handler = websocket_route(ping)
