"""The Lambda functions: runtime, architecture, sizing, logs, tracing, environment."""

from __future__ import annotations

from typing import Any

import pytest
from chat import config

from infra import constants, sizing
from infra.stack import ChatStack
from tests.infra.conftest import all_functions, logical_id

ROUTE_IDS = [route.function_id for route in constants.ROUTES]


def _properties(chat_stack: ChatStack, resources: dict[str, Any], name: str) -> dict[str, Any]:
    return resources[logical_id(all_functions(chat_stack)[name])]["Properties"]


@pytest.mark.parametrize("name", [*ROUTE_IDS, "FanoutWorker", "PresenceCheck", "Authorizer", "PreSignUp"])
def test_arm64_python_313_traced_with_a_month_of_logs(
    chat_stack: ChatStack, resources: dict[str, Any], name: str
) -> None:
    """Every function runs Python 3.13 on arm64, traces with X-Ray and logs to a 30-day log group."""
    function = _properties(chat_stack, resources, name)
    assert function["Runtime"] == constants.PYTHON_RUNTIME
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_handlers(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Each function points at the handler named in infra/constants.py."""
    expected = {route.function_id: route.handler for route in constants.ROUTES}
    expected |= {
        "FanoutWorker": constants.FANOUT_WORKER_HANDLER,
        "PresenceCheck": constants.PRESENCE_CHECK_HANDLER,
        "Authorizer": constants.AUTHORIZER_HANDLER,
        "PreSignUp": constants.PRESIGNUP_HANDLER,
    }
    actual = {name: _properties(chat_stack, resources, name)["Handler"] for name in expected}
    assert actual == expected


def test_memory_and_timeouts(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Fan-out gets 1 GB (CPU-bound); routes outlast API Gateway's 29 s; the authorizer stops at 10 s."""
    for name in ROUTE_IDS:
        function = _properties(chat_stack, resources, name)
        assert function["MemorySize"] == (1024 if name == "SendMessage" else 256), name
        assert 29 <= function["Timeout"] <= 35, name
    assert _properties(chat_stack, resources, "Authorizer")["Timeout"] == 10
    worker = _properties(chat_stack, resources, "FanoutWorker")
    assert (worker["MemorySize"], worker["Timeout"]) == (1769, 120)  # a full vCPU; not behind API Gateway


def test_sizes_are_the_ones_the_local_stack_reads(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Each function's memory and timeout in the template are infra/sizing.py's, the local stack's source."""
    expected = {name: (sizing.route_memory_mb(name), sizing.ROUTE_TIMEOUT_S) for name in ROUTE_IDS}
    expected |= {
        "FanoutWorker": (sizing.FANOUT_WORKER_MEMORY_MB, sizing.FANOUT_WORKER_TIMEOUT_S),
        "PresenceCheck": (sizing.DEFAULT_MEMORY_MB, sizing.PRESENCE_CHECK_TIMEOUT_S),
        "Authorizer": (sizing.DEFAULT_MEMORY_MB, sizing.AUTHORIZER_TIMEOUT_S),
        "PreSignUp": (sizing.DEFAULT_MEMORY_MB, sizing.ROUTE_TIMEOUT_S),
    }
    properties = {name: _properties(chat_stack, resources, name) for name in expected}
    actual = {name: (function["MemorySize"], function["Timeout"]) for name, function in properties.items()}
    assert actual == expected


def test_broadcasting_routes_know_the_fan_out_worker(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """Route functions name the worker function; the worker itself does not (it never hands work on)."""
    worker_ref = {"Ref": logical_id(chat_stack.functions.fanout_worker)}
    for name in ROUTE_IDS:
        assert (
            _properties(chat_stack, resources, name)["Environment"]["Variables"][config.FANOUT_FUNCTION_NAME]
            == worker_ref
        )
    worker_env = _properties(chat_stack, resources, "FanoutWorker")["Environment"]["Variables"]
    assert config.FANOUT_FUNCTION_NAME not in worker_env


@pytest.mark.parametrize("name", [*ROUTE_IDS, "Authorizer"])
def test_environment_names_the_tables_and_the_user_pool(
    chat_stack: ChatStack, resources: dict[str, Any], name: str
) -> None:
    """Route functions and the authorizer get the variables chat.config reads, pointing at this stack."""
    env = _properties(chat_stack, resources, name)["Environment"]["Variables"]
    tables = chat_stack.tables
    assert env[config.CONNECTIONS_TABLE] == {"Ref": logical_id(tables.connections)}
    assert env[config.PRESENCE_TABLE] == {"Ref": logical_id(tables.presence)}
    assert env[config.MESSAGES_TABLE] == {"Ref": logical_id(tables.messages)}
    assert env[config.USER_POOL_ID] == {"Ref": logical_id(chat_stack.identity.user_pool)}
    assert env[config.USER_POOL_CLIENT_ID] == {"Ref": logical_id(chat_stack.identity.client)}
    issuer = env[config.TOKEN_ISSUER]["Fn::Join"][1]
    assert issuer == [
        "https://cognito-idp.",
        {"Ref": "AWS::Region"},
        ".",
        {"Ref": "AWS::URLSuffix"},
        "/",
        {"Ref": logical_id(chat_stack.identity.user_pool)},
    ]
    # Host names built at run time (the management API) use the partition's suffix too.
    assert env[config.AWS_URL_SUFFIX] == {"Ref": "AWS::URLSuffix"}
    # The management endpoint is derived from each event (custom domains differ from the default).
    assert config.MANAGEMENT_ENDPOINT not in env
