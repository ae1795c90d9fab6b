"""Route modules show a plain function and ``handler = websocket_route(fn)``; the decorator form of
older modules keeps working, and neither lets an event without an identity crash the handler."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from chat.handlers.route import connection_route, websocket_route
from chat.service import Caller, ChatService
from chat.websocket_event import WebSocketEvent

from tests.support.world import lambda_context

EVENTS = Path(__file__).resolve().parent.parent / "events"
ROUTE_MODULES = ("connect", "disconnect", "default", "ping", "sendmessage", "sync", "who")


def _anonymous(name: str) -> dict[str, Any]:
    """A recorded event of API Gateway's, with no authorizer context (an API wired without it)."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    event["requestContext"].pop("authorizer", None)
    return event


@pytest.mark.parametrize("module_name", ROUTE_MODULES)
def test_each_route_module_names_its_action_and_its_lambda_entry(module_name: str) -> None:
    """``handler`` takes Lambda's (event, context) and carries the name of the module's own action."""
    module = importlib.import_module(f"chat.handlers.{module_name}")
    action = getattr(module, module.handler.__name__)
    assert inspect.getmodule(action) is module and action is not module.handler
    assert list(inspect.signature(action).parameters) == ["service", "caller", "event"]


def test_the_decorator_form_still_makes_a_lambda_handler() -> None:
    """``@websocket_route`` over ``def handler(service, caller, event)`` is the same handler as the
    assignment form: without an identity both answer 500 and never run the action."""
    ran: list[str] = []

    def record(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
        ran.append(caller.username)

    @websocket_route
    def handler(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
        record(service, caller, event)

    assigned = websocket_route(record)
    for lambda_handler in (handler, assigned):
        assert lambda_handler(_anonymous("message"), lambda_context()) == {"statusCode": 500}
    assert ran == []


def test_a_connection_route_without_an_identity_is_refused_with_403() -> None:
    """$connect with no authorizer context answers 403 and records nothing."""
    ran: list[str] = []

    def connect(service: ChatService, caller: Caller, event: WebSocketEvent) -> None:
        ran.append(caller.username)

    assert connection_route(connect)(_anonymous("connect"), lambda_context()) == {"statusCode": 403}
    assert ran == []
