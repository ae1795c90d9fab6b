"""The DynamoDB tables match infra/schema.py, the one description both stacks build from."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra import schema
from infra.stack import ChatStack
from tests.infra.conftest import logical_id, synthesize


def _table(chat_stack: ChatStack, resources: dict[str, Any], spec: schema.TableSpec) -> dict[str, Any]:
    return resources[logical_id(chat_stack.tables.by_logical_id()[spec.logical_id])]


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        keys.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return keys


@pytest.mark.parametrize("spec", schema.TABLES, ids=lambda s: s.logical_id)
def test_keys_and_indexes_equal_the_schema(
    chat_stack: ChatStack, resources: dict[str, Any], spec: schema.TableSpec
) -> None:
    """Key schema, string key attributes and global secondary indexes are exactly infra/schema.py's."""
    table = _table(chat_stack, resources, spec)["Properties"]
    assert table["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key)
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": name, "AttributeType": "S"} for name in sorted(spec.key_attributes())
    ]
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {
        index.name: (_key_schema(index.partition_key, index.sort_key), index.projection)
        for index in spec.indexes
    }


@pytest.mark.parametrize("spec", schema.TABLES, ids=lambda s: s.logical_id)
def test_on_demand_with_ttl_and_point_in_time_recovery(
    chat_stack: ChatStack, resources: dict[str, Any], spec: schema.TableSpec
) -> None:
    """Every table bills per request, expires items by the schema's TTL attribute, and has PITR."""
    table = _table(chat_stack, resources, spec)["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_no_table_has_a_global_secondary_index(resources: dict[str, Any]) -> None:
    """No index is read, so none exists: DynamoDB reads a global secondary index only eventually
    consistently, and who receives a frame is decided by strongly consistent reads."""
    tables = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == len(schema.TABLES)
    assert [t["Properties"].get("GlobalSecondaryIndexes") for t in tables] == [None] * len(tables)


def test_history_is_retained_and_sockets_are_not(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """By default `cdk destroy` keeps the message history but deletes connection and presence state."""
    assert _table(chat_stack, resources, schema.MESSAGES)["DeletionPolicy"] == "Retain"
    assert _table(chat_stack, resources, schema.CONNECTIONS)["DeletionPolicy"] == "Delete"
    assert _table(chat_stack, resources, schema.PRESENCE)["DeletionPolicy"] == "Delete"


def test_retain_data_false_deletes_the_history() -> None:
    """`-c retainData=false` makes the messages table and the user pool go with the stack."""
    stack = synthesize(retainData="false")
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert resources[logical_id(stack.tables.messages)]["DeletionPolicy"] == "Delete"
    assert resources[logical_id(stack.identity.user_pool)]["DeletionPolicy"] == "Delete"
