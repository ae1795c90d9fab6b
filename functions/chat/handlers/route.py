"""What every WebSocket route handler shares: observability, identity, and errors as frames.

A route handler is one line of intent; this decorator gives it Powertools' logger context, tracing
and metrics, the caller's identity from the authorizer's context (never from the body or the query
string), the caller's budget for the route checked before any other work (``chat.limits``), and
one place where errors become ``error`` frames. No input escapes as an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat import wiring
from chat.errors import ChatError, DependencyError, RejectedFrame
from chat.notifier import begin_invocation
from chat.observability import logger, metrics, tracer
from chat.protocol import client_msg_id_of
from chat.service import Caller, ChatService
from chat.usernames import normalize_username

UseCase = Callable[[ChatService, Caller, APIGatewayWebSocketEvent], None]
LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

OK = {"statusCode": 200}


class MissingIdentity(Exception):
    """The event carries no authorizer context: the API is wired without the authorizer."""


def caller_of(event: APIGatewayWebSocketEvent) -> Caller:
    context = event.request_context
    authorizer = context.get("authorizer") or {}
    username = normalize_username(authorizer.get("username"))
    if username is None:
        raise MissingIdentity("no username in the authorizer context")
    return Caller(connection_id=context.connection_id, username=username)


def service_of(event: APIGatewayWebSocketEvent) -> ChatService:
    context = event.request_context
    return wiring.service_for(wiring.endpoint_for(api_id=context.api_id, stage=context.stage))


def observed(answer: Callable[[APIGatewayWebSocketEvent], dict[str, Any]]) -> LambdaHandler:
    """A Lambda handler around ``answer``: Powertools' logger context, tracing and metrics, and the
    connection id and route on every log line."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    @functools.wraps(answer)
    def handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        begin_invocation()  # no kept-alive connection from before a freeze is trusted
        event = APIGatewayWebSocketEvent(raw_event)
        context_of_request = event.request_context
        logger.append_keys(connection_id=context_of_request.connection_id, route=context_of_request.route_key)
        return answer(event)

    return cast(LambdaHandler, handler)


def websocket_route(use_case: UseCase) -> LambdaHandler:
    """Wrap a message route: errors become an ``error`` frame and the connection stays open."""

    def answer(event: APIGatewayWebSocketEvent) -> dict[str, Any]:
        try:
            service, caller = service_of(event), caller_of(event)
        except Exception:  # noqa: BLE001 - no event may crash a handler
            logger.exception("cannot serve this route")
            return {"statusCode": 500}
        try:
            # The route API Gateway chose, not the frame's action: $default is budgeted too.
            if service.admit(caller, event.request_context.route_key, event.body):
                use_case(service, caller, event)
        except RejectedFrame as error:
            logger.info("frame refused", code=error.code)
            service.report_error(caller, error)
        except Exception as error:  # noqa: BLE001 - the last line of defence: log, answer internal_error
            logger.exception("route failed")
            # Say what failed when it was a dependency, never how (no stack, no SDK message).
            message = (
                error.message if isinstance(error, DependencyError) else "something went wrong on our side"
            )
            client_msg_id = client_msg_id_of(event.body)
            service.report_error(caller, ChatError(f"{message}; try again", client_msg_id=client_msg_id))
        return OK

    return observed(functools.wraps(use_case)(answer))


def connection_route(use_case: UseCase) -> LambdaHandler:
    """Wrap $connect / $disconnect: the answer is the status code (nothing can be posted back)."""

    def answer(event: APIGatewayWebSocketEvent) -> dict[str, Any]:
        try:
            caller = caller_of(event)
        except MissingIdentity:
            logger.error("refused: no identity from the authorizer")
            return {"statusCode": 403}
        try:
            use_case(service_of(event), caller, event)
        except Exception:  # noqa: BLE001 - refuse the handshake rather than crash
            logger.exception("connection route failed")
            return {"statusCode": 500}
        return OK

    return observed(functools.wraps(use_case)(answer))
