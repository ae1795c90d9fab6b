"""The handlers' DynamoDB answer parser (chat.dynamodb_json) parses every answer as botocore's own
JSON parser does, on items of every attribute type."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from botocore.parsers import JSONParser
from chat import aws_clients, dynamodb_json

MODEL = botocore.session.get_session().get_service_model("dynamodb")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# An item of every attribute type as DynamoDB sends it (binary in base64), nested ones too.
EVERY_TYPE: dict[str, Any] = {
    "feed": {"S": "public"},
    "id": {"S": "01KBD3Q0Z6R3V0000000000000"},
    "text": {"S": 'é ✓ \u2028 "quoted" {"S": "x"}'},
    "empty": {"S": ""},
    "n": {"N": "1.50"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "b": {"B": b64(b"\x00\xff")},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b64(b"x"), b64(b"")]},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"NULL": True}, {"B": b64(b"y")}, {"L": []}]},
    "m": {"M": {"k": {"BOOL": False}, "e": {"L": []}, "deep": {"M": {"b": {"B": b64(b"z")}}}}},
    "future": {"XYZ": "a type this SDK does not know"},
}

ANSWERS: dict[str, dict[str, Any]] = {
    "Query": {
        "Items": [EVERY_TYPE, {"feed": {"S": "public"}, "id": {"S": "2"}}],
        "Count": 2,
        "ScannedCount": 2,
        "LastEvaluatedKey": {"feed": {"S": "public"}, "id": {"S": "2"}},
        "ConsumedCapacity": {"TableName": "Messages", "CapacityUnits": 1.5},
    },
    "GetItem": {"Item": EVERY_TYPE},
    "BatchGetItem": {"Responses": {"Messages": [EVERY_TYPE]}, "UnprocessedKeys": {}},
    "TransactGetItems": {"Responses": [{"Item": EVERY_TYPE}]},
    "UpdateItem": {"Attributes": EVERY_TYPE},
    "Scan": {"Items": [], "Count": 0, "ScannedCount": 0},
    "ListTables": {"TableNames": ["Messages"]},
}


def parsed(parser: JSONParser, operation: str, body: bytes, status: int = 200) -> Any:
    response = {"body": body, "headers": {"x-amzn-requestid": "r1"}, "status_code": status}
    return parser.parse(response, MODEL.operation_model(operation).output_shape)


@pytest.mark.parametrize("operation", sorted(ANSWERS))
def test_answers_parse_as_botocore_parses_them(operation: str) -> None:
    """Each answer, items of every type included, parses to what botocore's JSONParser makes of it."""
    body = json.dumps(ANSWERS[operation]).encode()
    ours = parsed(dynamodb_json.ItemParser(), operation, body)
    assert ours == parsed(JSONParser(), operation, body)


def test_binary_values_come_back_as_bytes() -> None:
    """Binary attributes, at the top and nested, are decoded (not taken as sent)."""
    item = parsed(dynamodb_json.ItemParser(), "GetItem", json.dumps(ANSWERS["GetItem"]).encode())["Item"]
    assert item["b"] == {"B": b"\x00\xff"} and item["bs"] == {"BS": [b"x", b""]}
    assert item["m"]["M"]["deep"]["M"]["b"] == {"B": b"z"}
    assert item["text"] == EVERY_TYPE["text"] and item["n"] == {"N": "1.50"}


def test_errors_parse_as_botocore_parses_them() -> None:
    """An error answer keeps its code and message."""
    body = json.dumps(
        {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "no"}
    ).encode()
    ours = parsed(dynamodb_json.ItemParser(), "PutItem", body, status=400)
    assert ours == parsed(JSONParser(), "PutItem", body, status=400)
    assert ours["Error"]["Code"] == "ConditionalCheckFailedException"


def test_handler_clients_use_the_item_parser() -> None:
    """The session the handlers' clients come from makes JSON-protocol parsers of ours."""
    factory = aws_clients.session().get_component("response_parser_factory")
    assert isinstance(factory.create_parser("json"), dynamodb_json.ItemParser)
    assert not isinstance(factory.create_parser("rest-json"), dynamodb_json.ItemParser)


def test_the_item_parser_fits_this_botocore_and_not_one_without_its_methods() -> None:
    """The parser is used only on a botocore whose JSON parser has the private methods it extends."""

    class RenamedInternals(JSONParser):
        _handle_map = None  # type: ignore[assignment]

    assert dynamodb_json.fits()
    assert not dynamodb_json.fits(RenamedInternals)
