"""Reading what is durable: every item of one feed of the Messages table, straight from DynamoDB."""

from __future__ import annotations

from typing import Any


def feed_items(dynamodb: Any, table_name: str, feed: str) -> list[dict[str, Any]]:
    """Every item in ``feed`` of the Messages table ``table_name``, oldest first, strongly consistent."""
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("query").paginate(
        TableName=table_name,
        KeyConditionExpression="feed = :f",
        ExpressionAttributeValues={":f": {"S": feed}},
        ConsistentRead=True,
    ):
        items += page["Items"]
    return items
