"""moto's server as the local stack runs it, over HTTP: TransactWriteItems all or nothing at the
cost of the items it writes (not of the tables it names), and item-bearing answers written as
plain JSON that match moto's own serializer."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra import schema
from local_stack import aws, moto_server
from local_stack.moto_server import AtomicMotoServer
from tests.support.dynamodb_wire import raw_call

# Every attribute type, including binary, nested and non-ASCII values.
EVERY_TYPE = {
    "feed": {"S": "types"},
    "id": {"S": "1"},
    "n": {"N": "1.50"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "b": {"B": b"\x00\xff"},
    "bs": {"BS": [b"x"]},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"NULL": True}]},
    "m": {"M": {"k": {"BOOL": False}, "e": {"L": []}}},
    "u": {"S": 'é ✓ \u2028 "quoted"'},
}


@pytest.fixture(scope="module")
def dynamodb(server: AtomicMotoServer) -> Any:
    return boto3.client("dynamodb", endpoint_url=server.url, region_name=aws.REGION, **aws.DUMMY_CREDENTIALS)


@pytest.fixture
def table(dynamodb: Any) -> str:
    """A fresh table shaped like Messages (feed, id)."""
    name = f"Messages-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**schema.create_table_request(schema.MESSAGES, name))
    return name


def item(feed: str, id_: str, **attributes: str) -> dict[str, Any]:
    return {"feed": {"S": feed}, "id": {"S": id_}, **{k: {"S": v} for k, v in attributes.items()}}


def stored(dynamodb: Any, table: str, feed: str, id_: str) -> dict[str, Any] | None:
    answer = dynamodb.get_item(TableName=table, Key=item(feed, id_), ConsistentRead=True)
    return answer.get("Item")


def cancelled(dynamodb: Any, writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a transaction that must be cancelled; its cancellation reasons."""
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=writes)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons: list[dict[str, Any]] = raised.value.response["CancellationReasons"]
    return reasons


def test_failed_condition_on_second_item_leaves_first_unwritten(dynamodb: Any, table: str) -> None:
    """A ConditionalCheckFailed on the second write cancels the whole transaction: the first is not stored."""
    dynamodb.put_item(TableName=table, Item=item("dedup#a", "k1", messageId="m0"))
    reasons = cancelled(
        dynamodb,
        [
            {"Put": {"TableName": table, "Item": item("public", "m1", text="hi")}},
            {
                "Put": {
                    "TableName": table,
                    "Item": item("dedup#a", "k1", messageId="m1"),
                    "ConditionExpression": "attribute_not_exists(feed)",
                }
            },
        ],
    )
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert stored(dynamodb, table, "public", "m1") is None
    assert stored(dynamodb, table, "dedup#a", "k1") == item("dedup#a", "k1", messageId="m0")


def test_cancelled_transaction_restores_updated_and_deleted_items(dynamodb: Any, table: str) -> None:
    """Items updated in place, overwritten or deleted before the failing write are exactly as before."""
    dynamodb.put_item(TableName=table, Item={**item("rate#a", "1"), "sent": {"N": "5"}})
    dynamodb.put_item(TableName=table, Item=item("public", "old", text="keep me"))
    dynamodb.put_item(TableName=table, Item=item("public", "over", text="original"))
    reasons = cancelled(
        dynamodb,
        [
            {
                "Update": {
                    "TableName": table,
                    "Key": item("rate#a", "1"),
                    "UpdateExpression": "ADD sent :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": table, "Key": item("public", "old")}},
            {"Put": {"TableName": table, "Item": item("public", "over", text="replaced")}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": item("public", "missing"),
                    "ConditionExpression": "attribute_exists(feed)",
                }
            },
        ],
    )
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert stored(dynamodb, table, "rate#a", "1") == {**item("rate#a", "1"), "sent": {"N": "5"}}
    assert stored(dynamodb, table, "public", "old") == item("public", "old", text="keep me")
    assert stored(dynamodb, table, "public", "over") == item("public", "over", text="original")


def test_successful_transaction_writes_every_item(dynamodb: Any, table: str) -> None:
    """With every condition met, each write of the transaction is stored."""
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": item("dedup#a", "k2", messageId="m2"),
                    "ConditionExpression": "attribute_not_exists(feed)",
                }
            },
            {"Put": {"TableName": table, "Item": item("user#a", "m2", text="psst")}},
            {"Put": {"TableName": table, "Item": item("user#b", "m2", text="psst")}},
        ]
    )
    assert stored(dynamodb, table, "dedup#a", "k2") is not None
    assert stored(dynamodb, table, "user#a", "m2") == item("user#a", "m2", text="psst")
    assert stored(dynamodb, table, "user#b", "m2") == item("user#b", "m2", text="psst")


def test_all_old_reason_carries_the_item_that_failed(dynamodb: Any, table: str) -> None:
    """ReturnValuesOnConditionCheckFailure=ALL_OLD puts the existing item in the cancellation reason."""
    dynamodb.put_item(TableName=table, Item=item("dedup#a", "k3", messageId="m0"))
    reasons = cancelled(
        dynamodb,
        [
            {
                "Put": {
                    "TableName": table,
                    "Item": item("dedup#a", "k3", messageId="m3"),
                    "ConditionExpression": "attribute_not_exists(feed)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ],
    )
    assert reasons == [
        {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
            "Item": item("dedup#a", "k3", messageId="m0"),
        }
    ]


def test_two_writes_to_one_item_are_refused_and_nothing_is_written(dynamodb: Any, table: str) -> None:
    """Two operations on one item are a ValidationException, and the other writes are undone."""
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item("public", "first")}},
                {"Put": {"TableName": table, "Item": item("public", "twice")}},
                {"Delete": {"TableName": table, "Key": item("public", "twice")}},
            ]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert stored(dynamodb, table, "public", "first") is None
    assert stored(dynamodb, table, "public", "twice") is None


def test_transaction_cost_does_not_grow_with_the_table(dynamodb: Any, table: str) -> None:
    """A transaction on a table of 3,000 items takes about as long as on an empty one (no table copy)."""

    def send(i: int) -> None:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": item("dedup#a", f"k{i}"),
                        "ConditionExpression": "attribute_not_exists(feed)",
                    }
                },
                {"Put": {"TableName": table, "Item": item("public", f"{i:06d}", text="x" * 200)}},
            ]
        )

    def seconds_for(start: int, count: int = 50) -> float:
        began = time.perf_counter()
        for i in range(start, start + count):
            send(i)
        return time.perf_counter() - began

    empty = seconds_for(0)
    with BatchWriter(dynamodb, table) as put:
        for i in range(1000, 4000):
            put(item("public", f"{i:06d}", text="x" * 200))
    full = seconds_for(10_000)
    # A copy of 3,000 items per send would make this tens of times slower; noise is well under 3x.
    assert full < 3 * empty + 0.5, (empty, full)


class BatchWriter:
    """BatchWriteItem in chunks of 25, as DynamoDB takes them."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._pending: list[dict[str, Any]] = []

    def __enter__(self) -> Any:
        return self._put

    def __exit__(self, *exc: object) -> None:
        self._flush()

    def _put(self, row: dict[str, Any]) -> None:
        self._pending.append({"PutRequest": {"Item": row}})
        if len(self._pending) == 25:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._dynamodb.batch_write_item(RequestItems={self._table: self._pending})
            self._pending = []


# -- answers as plain JSON


def raw_answers(url: str, table: str) -> dict[str, Any]:
    """Each item-bearing operation's answer as sent: status, headers that are not per-request, body."""

    def call(target: str, body: dict[str, Any]) -> Any:
        status, headers, answer = raw_call(url, target, body)
        per_request = {"date", "x-amzn-requestid", "x-amz-crc32", "content-length", "server"}
        return status, {k: v for k, v in headers.items() if k not in per_request}, json.loads(answer)

    key = {"feed": {"S": "types"}, "id": {"S": "1"}}
    other = {"feed": {"S": "other"}, "id": {"S": "1"}}
    answers = {
        "GetItem": call("GetItem", {"TableName": table, "Key": key}),
        "Query": call(
            "Query",
            {
                "TableName": table,
                "KeyConditionExpression": "feed = :f",
                "ExpressionAttributeValues": {":f": {"S": "types"}},
                "Limit": 1,
            },
        ),
        "Scan": call("Scan", {"TableName": table, "Limit": 1}),
        "UpdateItem": call(
            "UpdateItem",
            {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "ADD c :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        "PutItem": call("PutItem", {"TableName": table, "Item": other, "ReturnValues": "ALL_OLD"}),
        "BatchGetItem": call("BatchGetItem", {"RequestItems": {table: {"Keys": [key, other]}}}),
        "TransactGetItems": call(
            "TransactGetItems", {"TransactItems": [{"Get": {"TableName": table, "Key": key}}]}
        ),
        "DeleteItem": call("DeleteItem", {"TableName": table, "Key": other, "ReturnValues": "ALL_OLD"}),
        "BatchWriteItem": call(
            "BatchWriteItem", {"RequestItems": {table: [{"PutRequest": {"Item": other}}]}}
        ),
        "TransactWriteItems": call(
            "TransactWriteItems", {"TransactItems": [{"Delete": {"TableName": table, "Key": other}}]}
        ),
    }
    # Undo the writes, so that both runs start from the same table.
    call("UpdateItem", {"TableName": table, "Key": key, "UpdateExpression": "REMOVE c"})
    return answers


def test_plain_json_answers_match_moto_serializer(
    server: AtomicMotoServer, dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each item-bearing operation answers with the same status, headers and JSON as moto's serializer."""
    dynamodb.put_item(TableName=table, Item=EVERY_TYPE)
    plain = raw_answers(server.url, table)
    monkeypatch.setattr(moto_server.DynamoHandler, "serialized", moto_server.MOTO_SERIALIZED)
    generic = raw_answers(server.url, table)
    assert set(plain) == moto_server.PLAIN_JSON_OPERATIONS
    for operation, answer in plain.items():
        assert answer == generic[operation], operation


def test_every_attribute_type_reads_back_through_boto3(dynamodb: Any, table: str) -> None:
    """An item of every attribute type comes back equal from GetItem, Query and Scan."""
    dynamodb.put_item(TableName=table, Item=EVERY_TYPE)
    key = {"feed": EVERY_TYPE["feed"], "id": EVERY_TYPE["id"]}
    assert dynamodb.get_item(TableName=table, Key=key)["Item"] == EVERY_TYPE
    queried = dynamodb.query(
        TableName=table,
        KeyConditionExpression="feed = :f",
        ExpressionAttributeValues={":f": EVERY_TYPE["feed"]},
    )
    assert queried["Items"] == [EVERY_TYPE]
    assert queried["Count"] == 1
    assert dynamodb.scan(TableName=table)["Items"] == [EVERY_TYPE]


# -- the projected Scan (the connections of every public message)


def raw_scan(url: str, body: dict[str, Any]) -> bytes:
    """A Scan's answer as sent, byte for byte."""
    status, _, answer = raw_call(url, "Scan", body, timeout=30)
    assert status == 200, answer
    return answer


def test_projected_scan_answers_byte_for_byte_as_moto(
    server: AtomicMotoServer, dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole-table Scan with a projection sends the very bytes moto's own Scan sends, across a 1 MB
    page end, items of every type and items without a projected attribute; other Scans still work."""
    filler = "x" * 5000
    for number in range(260):  # about 1.3 MB: the first page ends at 1 MB
        attributes = {"who": f"user{number % 7}", "pad": filler}
        if number % 5 == 0:
            del attributes["who"]
        dynamodb.put_item(TableName=table, Item=item("f", f"{number:04d}", **attributes))
    dynamodb.put_item(TableName=table, Item=EVERY_TYPE)
    bodies = [
        {"TableName": table, "ProjectionExpression": "id, who", "ConsistentRead": True},
        {
            "TableName": table,
            "ProjectionExpression": "#i, n, m, b, ss, who, id",
            "ExpressionAttributeNames": {"#i": "id"},
        },
        {"TableName": table, "ProjectionExpression": "l[0], m.k"},
        {"TableName": table, "ProjectionExpression": "id", "Limit": 3},
        {"TableName": table, "ProjectionExpression": "id", "FilterExpression": "attribute_exists(who)"},
    ]
    fast = moto_server.projected_scan
    taken: list[list[str]] = []

    def counted(table: Any, names: list[str], projection: list[list[str]]) -> Any:
        taken.append(names)
        return fast(table, names, projection)

    monkeypatch.setattr(moto_server, "projected_scan", counted)
    ours = [raw_scan(server.url, body) for body in bodies]
    assert taken == [["id", "who"], ["id", "n", "m", "b", "ss", "who"]]  # the others: moto's own
    monkeypatch.setattr(moto_server.ItemRollbackDynamoDBBackend, "scan", moto_server.DynamoDBBackend.scan)
    motos = [raw_scan(server.url, body) for body in bodies]
    assert "LastEvaluatedKey" in json.loads(ours[0])
    for body, answer, expected in zip(bodies, ours, motos, strict=True):
        assert answer == expected, body
