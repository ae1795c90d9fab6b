"""The DynamoDB tables, as plain data: the CDK stack and the local stack both build from this.

Keeping one description means a table cannot differ between AWS and a laptop; a test compares
the synthesized template with it.

- connections: one item per open WebSocket connection; a public fan-out Scans it. Items expire a
  little after API Gateway's 2-hour limit. No index: DynamoDB reads global secondary indexes only
  eventually consistently, so one would let a private message miss a device that had just connected.
- presence: one item per online user holding the set of that user's connection ids; the item
  exists exactly while the set is non-empty, so a Scan lists who is online, and a strongly
  consistent BatchGetItem finds the connections a private message goes to.
- messages: the history. Partition (``feed``) ``public`` holds public messages, ``user#<name>`` a user's
  private messages (sent and received); ``dedup#<name>`` items make sends idempotent. The sort
  key is the message id, which is time-ordered. Items expire after the retention period.
  For conversations (protocol 1.1) a private message is also stored under ``dm#<from>#<to>`` (one
  direction of a conversation: history and unread counts are keyed Queries) and as the last
  message in both users' ``inbox#<name>`` partitions, beside their read positions (sort keys
  ``last#``, ``read#``, ``seen#`` and the partner's name), so an inbox is one Query; ``rate#<name>``
  and ``typing#<name>`` hold short-lived budget and typing-throttle items. No index is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    projection: str = "KEYS_ONLY"


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str = "expiresAt"
    indexes: tuple[Index, ...] = field(default_factory=tuple)

    def key_attributes(self) -> list[str]:
        """Every attribute used as a key by the table or an index (all strings)."""
        names = [self.partition_key, self.sort_key]
        for index in self.indexes:
            names += [index.partition_key, index.sort_key]
        return list(dict.fromkeys(n for n in names if n))


CONNECTIONS = TableSpec(logical_id="Connections", partition_key="connectionId")
PRESENCE = TableSpec(logical_id="Presence", partition_key="username")
MESSAGES = TableSpec(logical_id="Messages", partition_key="feed", sort_key="id")

TABLES = (CONNECTIONS, PRESENCE, MESSAGES)


def create_table_request(spec: TableSpec, table_name: str) -> dict[str, object]:
    """The boto3 ``create_table`` arguments for a spec (the local stack and the tests use this;
    the CDK stack builds the same tables from the same spec)."""
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    request: dict[str, object] = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in spec.key_attributes()
        ],
        "KeySchema": keys,
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in spec.indexes
        ]
    return request
