"""What every WebSocket route handler shares: observability, identity, and errors as frames.

A route module holds one plain function of what the route does, and the Lambda entry point made
from it::

    def ping(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
        service.ping(caller)

    handler = websocket_route(ping)

``websocket_route`` (message routes) and ``connection_route`` ($connect, $disconnect) each return
one flat ``handler(event, context)``, as Lambda calls it. It gives the route Powertools' logger
context and metrics, the caller's identity from the authorizer's context (never from the body or
the query string), the caller's budget for the route checked before any other work
(``chat.limits``), and one place where errors become ``error`` frames. No input escapes as an
exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chat import wiring
from chat.errors import ChatError, DependencyError, RejectedFrame
from chat.notifier import begin_invocation
from chat.observability import logger, metrics
from chat.protocol import client_msg_id_of
from chat.service import Caller, ChatService
from chat.usernames import normalize_username
from chat.websocket_event import WebSocketEvent

if TYPE_CHECKING:
    # Types only: importing Powertools' typing module at run time loads all of Powertools' utilities.
    from aws_lambda_powertools.utilities.typing import LambdaContext

RouteAction = Callable[[ChatService, Caller, WebSocketEvent], None]
LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]

OK = {"statusCode": 200}
FAILED = {"statusCode": 500}
FORBIDDEN = {"statusCode": 403}


class MissingIdentity(Exception):
    """The event carries no authorizer context: the API is wired without the authorizer."""


def websocket_route(action: RouteAction) -> LambdaHandler:
    """The Lambda handler of a message route: errors become an ``error`` frame and the connection
    stays open; the answer is always 200 once the caller is known."""

    def handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        event = begin(raw_event)
        try:
            service, caller = service_of(event), caller_of(event)
        except Exception:  # noqa: BLE001 - no event may crash a handler
            logger.exception("cannot serve this route")
            return FAILED
        try:
            # The route API Gateway chose, not the frame's action: $default is budgeted too.
            if service.admit(caller, event.request_context.route_key, event.body):
                action(service, caller, event)
        except RejectedFrame as error:
            logger.info("frame refused", code=error.code)
            service.report_error(caller, error)
        except Exception as error:  # noqa: BLE001 - the last line of defence: log, answer internal_error
            logger.exception("route failed")
            service.report_error(caller, internal_error(error, event))
        return OK

    return observed(handler, action)


def connection_route(action: RouteAction) -> LambdaHandler:
    """The Lambda handler of $connect / $disconnect: the answer is the status code (nothing can be
    posted back), 403 without an identity from the authorizer, 500 when the action fails."""

    def handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        event = begin(raw_event)
        try:
            caller = caller_of(event)
        except MissingIdentity:
            logger.error("refused: no identity from the authorizer")
            return FORBIDDEN
        try:
            action(service_of(event), caller, event)
        except Exception:  # noqa: BLE001 - refuse the handshake rather than crash
            logger.exception("connection route failed")
            return FAILED
        return OK

    return observed(handler, action)


def begin(raw_event: dict[str, Any]) -> WebSocketEvent:
    """Start an invocation: fresh management-API connections, the connection id and route on every
    log line."""
    begin_invocation()  # no kept-alive connection from before a freeze is trusted
    event = WebSocketEvent(raw_event)
    context = event.request_context
    logger.append_keys(connection_id=context.connection_id, route=context.route_key)
    return event


def observed(handler: LambdaHandler, action: RouteAction) -> LambdaHandler:
    """``handler`` with Powertools' logger context and metrics flush, named after ``action``."""
    functools.update_wrapper(handler, action)
    answer: LambdaHandler = logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(handler))
    return answer


def caller_of(event: WebSocketEvent) -> Caller:
    """Who is calling: only ever the authorizer's context, never the body or the query string."""
    context = event.request_context
    username = normalize_username(context.authorizer.get("username"))
    if username is None:
        raise MissingIdentity("no username in the authorizer context")
    return Caller(connection_id=context.connection_id, username=username)


def service_of(event: WebSocketEvent) -> ChatService:
    context = event.request_context
    return wiring.service_for(wiring.endpoint_for(api_id=context.api_id, stage=context.stage))


def internal_error(error: Exception, event: WebSocketEvent) -> ChatError:
    """The frame for a failure of ours: what failed when it was a dependency, never how (no stack,
    no SDK message)."""
    message = error.message if isinstance(error, DependencyError) else "something went wrong on our side"
    return ChatError(f"{message}; try again", client_msg_id=client_msg_id_of(event.body))
