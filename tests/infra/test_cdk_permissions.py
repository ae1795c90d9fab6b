"""Least privilege: each function's role allows exactly the actions its code calls, on its resources.

The expected sets are written out here, not imported from infra/permissions.py, so a change to the
grants has to be made (and reviewed) twice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from infra.stack import ChatStack
from tests.infra.conftest import all_functions, logical_id, of_type

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
MANAGE_CONNECTIONS = (
    "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:Api/*/*/@connections/*"
)
# What every route function needs to prune a connection API Gateway reports gone (410).
PRUNE = {
    "Connections": {"dynamodb:DeleteItem", "dynamodb:Scan"},
    "Presence": {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
}
POSTS_FRAMES = {MANAGE_CONNECTIONS: {"execute-api:ManageConnections"}}
# Functions that broadcast may hand chunks of a large audience to the fan-out worker.
INVOKES_WORKER = {"FanoutWorker": {"lambda:InvokeFunction"}}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "Connect": {
        **PRUNE,
        "Connections": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"},
        **POSTS_FRAMES,
        **INVOKES_WORKER,
    },
    "Disconnect": {**PRUNE, **POSTS_FRAMES, **INVOKES_WORKER, "PresenceQueue": {"sqs:SendMessage"}},
    "SendMessage": {
        **PRUNE,
        "Presence": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "Messages": {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"},
        "UserPool": {"cognito-idp:AdminGetUser"},
        **POSTS_FRAMES,
        **INVOKES_WORKER,
    },
    # Lambda sends the record of a worker event that failed every attempt to the on-failure queue
    # with the worker's role. aws_lambda_destinations.SqsDestination grants this (SendMessage is what
    # Lambda calls; reading the queue's URL and attributes comes with CDK's grantSendMessages).
    "FanoutWorker": {
        **PRUNE,
        **POSTS_FRAMES,
        "FanoutFailures": {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
    },
    "Sync": {**PRUNE, "Messages": {"dynamodb:Query", "dynamodb:UpdateItem"}, **POSTS_FRAMES},
    "Who": {
        **PRUNE,
        "Presence": {"dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "Messages": {"dynamodb:UpdateItem"},
        **POSTS_FRAMES,
    },
    "Ping": {**PRUNE, "Messages": {"dynamodb:UpdateItem"}, **POSTS_FRAMES},
    "History": {**PRUNE, "Messages": {"dynamodb:Query", "dynamodb:UpdateItem"}, **POSTS_FRAMES},
    "Inbox": {**PRUNE, "Messages": {"dynamodb:Query", "dynamodb:UpdateItem"}, **POSTS_FRAMES},
    "Read": {
        **PRUNE,
        "Presence": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "Messages": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
        "UserPool": {"cognito-idp:AdminGetUser"},
        **POSTS_FRAMES,
    },
    "Typing": {
        **PRUNE,
        "Presence": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "Messages": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
        "UserPool": {"cognito-idp:AdminGetUser"},
        **POSTS_FRAMES,
    },
    "Default": {**PRUNE, "Messages": {"dynamodb:UpdateItem"}, **POSTS_FRAMES},
    "PresenceCheck": {
        **PRUNE,
        "Presence": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        **POSTS_FRAMES,
        **INVOKES_WORKER,
        # Sending (a check that came early looks again later) and what its SQS trigger consumes with.
        "PresenceQueue": {
            "sqs:SendMessage",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        },
    },
    "Authorizer": {},
    "PreSignUp": {},
}


def _friendly_names(chat_stack: ChatStack) -> dict[str, str]:
    """Logical id -> the short name used in EXPECTED."""
    names = {logical_id(table): name for name, table in chat_stack.tables.by_logical_id().items()}
    names[logical_id(chat_stack.identity.user_pool)] = "UserPool"
    names[logical_id(chat_stack.websocket.api)] = "Api"
    names[logical_id(chat_stack.functions.fanout_worker)] = "FanoutWorker"
    names[logical_id(chat_stack.functions.fanout_failures.queue)] = "FanoutFailures"
    names[logical_id(chat_stack.presence.queue)] = "PresenceQueue"
    return names


def _render(value: Any, names: dict[str, str]) -> str:
    """A policy resource as readable text: ARNs of this stack's resources become their short names."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        return names.get(value["Fn::GetAtt"][0], value["Fn::GetAtt"][0])
    if "Ref" in value:
        return names.get(value["Ref"], "${" + value["Ref"] + "}")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part, names) for part in parts)
    raise AssertionError(f"unexpected policy resource {value}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_permissions(chat_stack: ChatStack, resources: dict[str, Any], function: Any) -> dict[str, set[str]]:
    """Resource -> allowed actions, over every inline policy attached to the function's role."""
    role_id = resources[logical_id(function)]["Properties"]["Role"]["Fn::GetAtt"][0]
    names = _friendly_names(chat_stack)
    permissions: dict[str, set[str]] = defaultdict(set)
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for resource in _as_list(statement["Resource"]):
                permissions[_render(resource, names)].update(_as_list(statement["Action"]))
    return dict(permissions)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_function_gets_exactly_its_actions(
    chat_stack: ChatStack, resources: dict[str, Any], name: str
) -> None:
    """The function's role allows these actions on these resources, nothing more and nothing less."""
    actual = _role_permissions(chat_stack, resources, all_functions(chat_stack)[name])
    assert actual == {**EXPECTED[name], "*": XRAY}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_only_managed_policy_is_basic_execution(
    chat_stack: ChatStack, resources: dict[str, Any], name: str
) -> None:
    """Besides its inline grants, a function role holds only AWSLambdaBasicExecutionRole (write logs)."""
    role_id = resources[logical_id(all_functions(chat_stack)[name])]["Properties"]["Role"]["Fn::GetAtt"][0]
    managed = resources[role_id]["Properties"]["ManagedPolicyArns"]
    assert len(managed) == 1
    assert managed[0]["Fn::Join"][1][-1].endswith(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")


# Functions whose only write to the Messages table is spending a budget (rate#<user> items).
BUDGET_ONLY = ("Sync", "Who", "Ping", "Default", "History", "Inbox")


@pytest.mark.parametrize("name", BUDGET_ONLY)
def test_budget_updates_reach_only_the_rate_limit_items(
    chat_stack: ChatStack, resources: dict[str, Any], name: str
) -> None:
    """Sync, who, ping and $default may update only partition keys rate#*: never a stored message."""
    role_id = resources[logical_id(all_functions(chat_stack)[name])]["Properties"]["Role"]["Fn::GetAtt"][0]
    names = _friendly_names(chat_stack)
    updates = [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Messages" in {_render(r, names) for r in _as_list(statement["Resource"])}
        and "dynamodb:UpdateItem" in _as_list(statement["Action"])
    ]
    assert [u["Condition"] for u in updates] == [
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["rate#*"]}}
    ]


def _messages_statements(
    chat_stack: ChatStack, resources: dict[str, Any], name: str, action: str
) -> list[Any]:
    role_id = resources[logical_id(all_functions(chat_stack)[name])]["Properties"]["Role"]["Fn::GetAtt"][0]
    names = _friendly_names(chat_stack)
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Messages" in {_render(r, names) for r in _as_list(statement["Resource"])}
        and action in _as_list(statement["Action"])
    ]


@pytest.mark.parametrize(("name", "keys"), [("Read", "inbox#*"), ("Typing", "typing#*")])
def test_conversation_writes_reach_only_their_own_items(
    chat_stack: ChatStack, resources: dict[str, Any], name: str, keys: str
) -> None:
    """Read may put only inbox#* items (read positions), Typing only typing#* (its throttle):
    neither can write a stored message."""
    puts = _messages_statements(chat_stack, resources, name, "dynamodb:PutItem")
    assert [p["Condition"] for p in puts] == [{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keys]}}]
    assert all(_as_list(p["Action"]) == ["dynamodb:PutItem"] for p in puts)
