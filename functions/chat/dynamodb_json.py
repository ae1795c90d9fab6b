"""botocore's JSON answer parser, with DynamoDB's items parsed in one step per attribute.

botocore parses an answer by walking the service model: each attribute of each item is a
structure of ten possible members (``S``, ``N``, ``B``, ``M``, ...), each looked up and handed to
its own handler. For a string, a number, a boolean or a null that walk returns the JSON value as it
came, so an attribute such as ``{"S": "hi"}`` is taken as it is here; a binary, a set, a map or a
list still goes through botocore's own code (maps and lists come back here for their members). A
sync of 1,000 messages spent more time in that walk than in anything else the handler did; the
parsed answer is the same (tests/functions/test_dynamodb_json.py compares the two on every type).
"""

from __future__ import annotations

from typing import Any, cast

from botocore.model import MapShape
from botocore.parsers import JSONParser, ResponseParser, ResponseParserFactory

# The AttributeValue members whose parsed value is the JSON value itself.
_AS_SENT = frozenset({"S", "N", "BOOL", "NULL"})


class ItemParser(JSONParser):
    """``JSONParser`` that takes the attributes of an item (a map of AttributeValue) as sent when
    their type is one in ``_AS_SENT``. (botocore's stubs leave out the parser's private methods,
    hence the casts.)"""

    def _handle_map(self, shape: MapShape, value: Any) -> Any:
        if shape.value.name != "AttributeValue" or not isinstance(value, dict):
            return cast("Any", super())._handle_map(shape, value)
        attribute_shape = shape.value
        parse = cast("Any", self)._parse_shape
        return {
            name: attribute if _as_sent(attribute) else parse(attribute_shape, attribute)
            for name, attribute in value.items()
        }


def _as_sent(attribute: Any) -> bool:
    if type(attribute) is not dict or len(attribute) != 1:
        return False
    kind, raw = next(iter(attribute.items()))
    return kind in _AS_SENT and raw is not None


def fits(parser_class: type[JSONParser] = JSONParser) -> bool:
    """Whether this botocore's JSON parser has the two private methods ``ItemParser`` builds on.

    On Lambda the runtime provides botocore, at a version this project does not pin: should a
    release rename them, the handlers keep botocore's own parser rather than fail every read.
    """
    return callable(getattr(parser_class, "_handle_map", None)) and callable(
        getattr(parser_class, "_parse_shape", None)
    )


class ParserFactory(ResponseParserFactory):
    """botocore's parser factory, with ``ItemParser`` for the JSON protocol (DynamoDB's)."""

    def create_parser(self, protocol_name: str) -> ResponseParser:
        if protocol_name == "json":
            return ItemParser(**cast("Any", self)._defaults)
        parser: ResponseParser = super().create_parser(protocol_name)
        return parser
