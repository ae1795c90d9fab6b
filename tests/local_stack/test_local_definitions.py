"""The local tables and user pool agree with the CDK stack's: keys, indexes, TTL, pool rules.

Both are built from ``infra/schema.py`` and ``infra/user_pool_rules.py``; this compares what the local stack
actually created (read back from moto) with the synthesized CloudFormation template.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra import constants, schema
from infra.stack import ChatStack
from local_stack import REPO_ROOT
from local_stack.testing import RunningStack

pytestmark = pytest.mark.slow  # one synth: a few seconds


@pytest.fixture(scope="module")
def chat_stack() -> ChatStack:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return ChatStack(cdk.App(context=context), constants.STACK_NAME)


@pytest.fixture(scope="module")
def resources(chat_stack: ChatStack) -> dict[str, Any]:
    resources: dict[str, Any] = Template.from_stack(chat_stack).to_json()["Resources"]
    return resources


def only(resources: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [properties] = [r["Properties"] for r in resources.values() if r["Type"] == resource_type]
    return properties


def by_name(items: list[dict[str, Any]], key: str = "AttributeName") -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item[key])


@pytest.mark.parametrize("spec", schema.TABLES, ids=lambda spec: spec.logical_id)
def test_local_table_equals_the_templates(
    stack: RunningStack, chat_stack: ChatStack, resources: dict[str, Any], spec: schema.TableSpec
) -> None:
    """Key schema, key attributes, global secondary indexes and TTL match the deployed table."""
    construct = chat_stack.tables.by_logical_id()[spec.logical_id]
    deployed = resources[chat_stack.get_logical_id(construct.node.default_child)]["Properties"]
    dynamodb = stack.aws_client("dynamodb")
    local = dynamodb.describe_table(TableName=stack.table_names[spec.logical_id])["Table"]

    assert local["KeySchema"] == deployed["KeySchema"]
    assert by_name(local["AttributeDefinitions"]) == by_name(deployed["AttributeDefinitions"])
    local_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in local.get("GlobalSecondaryIndexes", [])
    }
    deployed_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in deployed.get("GlobalSecondaryIndexes", [])
    }
    assert local_indexes == deployed_indexes
    ttl = dynamodb.describe_time_to_live(TableName=stack.table_names[spec.logical_id])[
        "TimeToLiveDescription"
    ]
    assert deployed["TimeToLiveSpecification"] == {"AttributeName": ttl["AttributeName"], "Enabled": True}
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_local_user_pool_equals_the_templates(stack: RunningStack, resources: dict[str, Any]) -> None:
    """Case-insensitive usernames and the same password policy."""
    deployed = only(resources, "AWS::Cognito::UserPool")
    local = stack.aws_client("cognito-idp").describe_user_pool(UserPoolId=stack.config["userPoolId"])[
        "UserPool"
    ]
    assert local["UsernameConfiguration"] == deployed["UsernameConfiguration"] == {"CaseSensitive": False}
    policy = local["Policies"]["PasswordPolicy"]
    assert {key: policy[key] for key in deployed["Policies"]["PasswordPolicy"]} == deployed["Policies"][
        "PasswordPolicy"
    ]


def test_local_app_client_equals_the_templates(stack: RunningStack, resources: dict[str, Any]) -> None:
    """No secret, the same auth flows and the same token lifetimes."""
    deployed = only(resources, "AWS::Cognito::UserPoolClient")
    local = stack.aws_client("cognito-idp").describe_user_pool_client(
        UserPoolId=stack.config["userPoolId"], ClientId=stack.config["userPoolClientId"]
    )["UserPoolClient"]
    assert deployed["GenerateSecret"] is False and "ClientSecret" not in local
    assert set(local["ExplicitAuthFlows"]) == set(deployed["ExplicitAuthFlows"])
    for token, validity in (
        ("AccessToken", "AccessTokenValidity"),
        ("IdToken", "IdTokenValidity"),
        ("RefreshToken", "RefreshTokenValidity"),
    ):
        assert _lifetime(local, token, validity) == _lifetime(deployed, token, validity)


def _lifetime(client: dict[str, Any], token: str, validity: str) -> timedelta:
    unit = client.get("TokenValidityUnits", {}).get(token, "days" if token == "RefreshToken" else "hours")
    return timedelta(**{unit: client[validity]})
