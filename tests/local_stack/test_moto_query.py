"""The local stack's keyed Query (local_stack/moto_query.py), direct result conversion and answers
without the XML request-id search (moto_server.py) against moto's own code: over HTTP, on the same tables,
every page of every Query answers byte for byte what moto answers."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from moto.dynamodb import responses
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import dynamo_to_dict

from infra import schema
from local_stack import aws, moto_query, moto_server
from local_stack.moto_server import AtomicMotoServer, ItemRollbackDynamoDBBackend
from tests.local_stack.test_moto_server import EVERY_TYPE
from tests.support.dynamodb_wire import raw_call

PER_REQUEST_HEADERS = {"date", "x-amzn-requestid"}
BIG_TEXT = "x" * 90_000  # a dozen of these fill a 1 MB page


@pytest.fixture(scope="module")
def table(server: AtomicMotoServer) -> str:
    """A table shaped like Messages: a partition of 60 small items, one of 30 big ones (1 MB pages),
    interleaved with items of other partitions, and a partition of one item."""
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=server.url, region_name=aws.REGION, **aws.DUMMY_CREDENTIALS
    )
    name = f"Messages-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**schema.create_table_request(schema.MESSAGES, name))
    for n in range(60):
        dynamodb.put_item(TableName=name, Item=message("public", f"{n:04d}", f"text {n} é ✓"))
        dynamodb.put_item(TableName=name, Item=message(f"user#u{n % 7}", f"{n:04d}", "private"))
    for n in range(30):
        dynamodb.put_item(TableName=name, Item=message("big", f"{n:04d}", BIG_TEXT[: 60_000 + n * 1_000]))
    dynamodb.put_item(TableName=name, Item={**message("inbox#a", "last#b", "hi"), "to": {"S": "b"}})
    dynamodb.put_item(TableName=name, Item=EVERY_TYPE)
    dynamodb.put_item(TableName=name, Item=message("xml", "1", "<RequestId>mine</RequestId>"))
    return name


def message(feed: str, id_: str, text: str) -> dict[str, Any]:
    return {
        "feed": {"S": feed},
        "id": {"S": id_},
        "from": {"S": "alice"},
        "text": {"S": text},
        "expiresAt": {"N": str(int(time.time()) + 3600)},
    }


def call(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """One Query over HTTP: status, the headers that are not per request, the body as sent."""
    status, headers, answer = raw_call(url, "Query", body)
    return status, {k: v for k, v in headers.items() if k not in PER_REQUEST_HEADERS}, answer


def every_page(url: str, body: dict[str, Any]) -> list[tuple[int, dict[str, str], bytes]]:
    """The Query's answers, following LastEvaluatedKey to the end."""
    pages = []
    request = dict(body)
    while True:
        pages.append(call(url, request))
        status, _, raw = pages[-1]
        if status != 200 or "LastEvaluatedKey" not in (answer := json.loads(raw)):
            return pages
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        assert len(pages) < 200


def query(table: str, feed: str, condition: str = "", **extra: Any) -> dict[str, Any]:
    values = {":f": {"S": feed}, **extra.pop("values", {})}
    return {
        "TableName": table,
        "KeyConditionExpression": "feed = :f" + (f" AND {condition}" if condition else ""),
        "ExpressionAttributeValues": values,
        **extra,
    }


def cases(table: str) -> dict[str, dict[str, Any]]:
    """Queries the keyed path answers: each condition, both directions, Limit, 1 MB pages, empty."""
    one = {":v": {"S": "0020"}}
    two = {":lo": {"S": "0010"}, ":hi": {"S": "0030"}}
    found = {}
    for forward in (True, False):
        way = "forward" if forward else "backward"
        for limit in (None, 1, 7):
            limited = {"ScanIndexForward": forward, **({"Limit": limit} if limit else {})}
            tag = f"{way}, limit {limit}"
            found[f"whole partition, {tag}"] = query(table, "public", **limited)
            for op in ("=", "<", "<=", ">", ">="):
                found[f"id {op}, {tag}"] = query(table, "public", f"id {op} :v", values=one, **limited)
            found[f"between, {tag}"] = query(table, "public", "id BETWEEN :lo AND :hi", values=two, **limited)
            found[f"begins_with, {tag}"] = query(
                table, "public", "begins_with(id, :p)", values={":p": {"S": "001"}}, **limited
            )
        found[f"1 MB pages, {way}"] = query(table, "big", ScanIndexForward=forward)
        found[f"1 MB pages from a key, {way}, limit 13"] = query(
            table, "big", "id >= :v", values={":v": {"S": "0004"}}, ScanIndexForward=forward, Limit=13
        )
        found[f"no such partition, {way}"] = query(table, "nobody", ScanIndexForward=forward)
        found[f"past the last key, {way}"] = query(
            table, "public", "id > :v", values={":v": {"S": "9999"}}, ScanIndexForward=forward, Limit=5
        )
        found[f"a partition of one, {way}"] = query(table, "inbox#a", ScanIndexForward=forward, Limit=1)
        found[f"every attribute type, {way}"] = query(table, "types", ScanIndexForward=forward)
    found["filter, projection and names"] = query(
        table,
        "public",
        "id >= :v",
        values={**one, ":now": {"N": "0"}},
        FilterExpression="expiresAt > :now AND #t <> :v",
        ProjectionExpression="id, #t",
        ExpressionAttributeNames={"#t": "text"},
        Limit=9,
        ConsistentRead=True,
    )
    found["count"] = query(table, "public", "id > :v", values=one, Select="COUNT", Limit=15)
    found["legacy KeyConditions"] = {
        "TableName": table,
        "KeyConditions": {
            "feed": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "public"}]},
            "id": {"ComparisonOperator": "GE", "AttributeValueList": [{"S": "0050"}]},
        },
        "Limit": 4,
    }
    return found


def use_moto_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's own Query, result conversion and answer enrichment, for the rest of the test."""
    monkeypatch.setattr(ItemRollbackDynamoDBBackend, "query", DynamoDBBackend.query)
    monkeypatch.setattr(responses, "DynamoResult", moto_server._MOTO_RESULT)
    monkeypatch.setattr(responses.DynamoHandler, "_enrich_response", staticmethod(moto_server.MOTO_ENRICH))


def test_direct_conversion_is_moto_conversion() -> None:
    """plain_data gives what dynamo_to_dict gives, for items of every type, keys and counts."""
    item = Item(DynamoType(EVERY_TYPE["feed"]), DynamoType(EVERY_TYPE["id"]), EVERY_TYPE)
    result = {"Items": [item.attrs, item.attrs], "Count": 2, "LastEvaluatedKey": {"id": item.range_key}}
    assert moto_server.plain_data(result) == dynamo_to_dict(result)
    assert moto_server.plain_data({"Item": item, "Nothing": None}) == dynamo_to_dict(
        {"Item": item, "Nothing": None}
    )


def test_keyed_query_answers_every_page_as_moto_does(
    server: AtomicMotoServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Query's pages, up to the last LastEvaluatedKey, are the same bytes from both paths."""
    keyed = {name: every_page(server.url, body) for name, body in cases(table).items()}
    use_moto_own(monkeypatch)
    for name, body in cases(table).items():
        assert keyed[name] == every_page(server.url, body), name
    paged = [name for name, pages in keyed.items() if len(pages) > 1]
    assert "1 MB pages, forward" in paged and "whole partition, backward, limit 7" in paged
    assert all(pages[0][0] == 200 for pages in keyed.values())


def test_keyed_path_answers_the_chats_queries(
    server: AtomicMotoServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyed path, not moto's fallback, answers every one of those Queries."""
    answered: list[bool] = []
    real = moto_query.keyed_query

    def spy(*args: Any, **kwargs: Any) -> Any:
        page = real(*args, **kwargs)
        answered.append(page is not None)
        return page

    monkeypatch.setattr(moto_query, "keyed_query", spy)
    for body in cases(table).values():
        every_page(server.url, body)
    assert answered and all(answered)


def test_other_queries_fall_back_to_moto(
    server: AtomicMotoServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start key of another partition or a number-typed condition goes to moto's own code, which
    answers as it always did."""
    odd = {
        "foreign start key": query(
            table, "public", ExclusiveStartKey={"feed": {"S": "big"}, "id": {"S": "0003"}}, Limit=3
        ),
        "number bound": query(table, "public", "id > :n", values={":n": {"N": "5"}}),
    }
    keyed = {name: every_page(server.url, body) for name, body in odd.items()}
    use_moto_own(monkeypatch)
    for name, body in odd.items():
        assert keyed[name] == every_page(server.url, body), name


def test_a_body_naming_a_request_id_still_gets_motos_rewrite(server: AtomicMotoServer, table: str) -> None:
    """moto rewrites an XML request id even inside a JSON string (a new id each answer); a body that
    holds the text still goes through that code, so only bodies without it skip the search."""
    texts = {json.loads(call(server.url, query(table, "xml"))[2])["Items"][0]["text"]["S"] for _ in range(2)}
    assert len(texts) == 2 and "<RequestId>mine</RequestId>" not in texts
