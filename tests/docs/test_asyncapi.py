"""docs/asyncapi.yaml says what the runtime does: same actions, frames, codes, limits and fields.

The document is held to ``chat.protocol``'s constants, its frame builders' real output, and its
parsers' verdicts, so neither can change without the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from chat import protocol
from chat.cursor import Cursor, IdGenerator
from chat.errors import RejectedFrame
from chat.usernames import USERNAME_RE
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from infra.constants import TOKEN_QUERY_PARAMETER

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
DOC_URI = "urn:chat:asyncapi"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    return loaded


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow a local ``$ref`` (as written in this document) to what it points at."""
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        assert pointer.startswith("#/"), pointer
        node = doc
        for part in pointer[2:].split("/"):
            node = node[part]
    return node


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator for a payload schema whose $refs point into the document."""
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT7)
    )
    # A $ref inside the document is resolved against the whole document, registered under DOC_URI.
    rooted = {"$ref": DOC_URI + schema["$ref"]} if "$ref" in schema else schema
    return jsonschema.Draft7Validator(
        rooted,
        registry=registry,
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )


def payload_validator(doc: dict[str, Any], message_name: str) -> jsonschema.Draft7Validator:
    return validator(doc, doc["components"]["messages"][message_name]["payload"])


def channel_messages(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resolve(doc, ref) for name, ref in doc["channels"]["chat"]["messages"].items()}


def const_of(doc: dict[str, Any], message: dict[str, Any], field: str) -> Any:
    payload = resolve(doc, message["payload"])
    return payload.get("properties", {}).get(field, {}).get("const")


def all_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_refs(item)


# ---- the document's own shape ------------------------------------------------------------------


def test_is_asyncapi_3(doc: dict[str, Any]) -> None:
    """The document declares AsyncAPI 3.0.0 and protocol version 1.1."""
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["version"] == "1.1"


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    """No $ref points at nothing."""
    refs = set(all_refs(doc))
    assert refs
    for ref in refs:
        assert resolve(doc, {"$ref": ref}) is not None, ref


def test_servers_for_aws_and_local_take_the_token_in_the_query(doc: dict[str, Any]) -> None:
    """wss on AWS, ws locally, both secured by the access token in the `token` query parameter."""
    servers = doc["servers"]
    assert servers["aws"]["protocol"] == "wss"
    assert servers["local"]["protocol"] == "ws"
    for server in servers.values():
        scheme = resolve(doc, server["security"][0])
        assert scheme == {**scheme, "type": "httpApiKey", "in": "query", "name": TOKEN_QUERY_PARAMETER}
    query = doc["channels"]["chat"]["bindings"]["ws"]["query"]
    assert query["required"] == [TOKEN_QUERY_PARAMETER]
    assert TOKEN_QUERY_PARAMETER in query["properties"]


def test_operations_use_only_their_channels_messages(doc: dict[str, Any]) -> None:
    """Every message an operation (or its reply) names is one of the channel's messages."""
    prefix = "#/channels/chat/messages/"
    known = set(doc["channels"]["chat"]["messages"])
    for name, operation in doc["operations"].items():
        refs = [m["$ref"] for m in operation["messages"] + operation.get("reply", {}).get("messages", [])]
        assert refs, name
        for ref in refs:
            assert ref.startswith(prefix) and ref[len(prefix) :] in known, (name, ref)


def test_payload_schemas_are_valid_json_schema(doc: dict[str, Any]) -> None:
    """Each schema is well-formed Draft 7, the dialect AsyncAPI 3 schemas build on."""
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)


def test_examples_match_their_payloads(doc: dict[str, Any]) -> None:
    """Every example in the document is valid against its own message's payload."""
    for name, message in doc["components"]["messages"].items():
        assert message.get("examples"), f"{name} has no example"
        check = payload_validator(doc, name)
        for example in message["examples"]:
            check.validate(example["payload"])


# ---- the same as chat.protocol -----------------------------------------------------------------


def test_client_actions_are_the_protocols(doc: dict[str, Any]) -> None:
    """The JSON client messages are exactly chat.protocol's actions, versions 1 and 1.1."""
    actions = [const_of(doc, m, "action") for m in channel_messages(doc).values()]
    assert sorted(a for a in actions if a) == sorted(protocol.ACTIONS + protocol.CONVERSATION_ACTIONS)


def test_bare_text_ping_is_described(doc: dict[str, Any]) -> None:
    """The bare text `ping` is a message of its own, plain text, answered with pong."""
    bare = doc["components"]["messages"]["barePing"]
    assert bare["contentType"] == "text/plain"
    assert bare["payload"]["const"] == "ping"
    assert protocol.is_bare_ping(bare["payload"]["const"])
    ping = doc["operations"]["ping"]
    assert {"$ref": "#/channels/chat/messages/barePing"} in ping["messages"]
    assert ping["reply"]["messages"] == [{"$ref": "#/channels/chat/messages/pong"}]


def test_server_frame_types_are_the_protocols(doc: dict[str, Any]) -> None:
    """The server frames are exactly chat.protocol's frame types, versions 1 and 1.1."""
    types = [const_of(doc, m, "type") for m in channel_messages(doc).values()]
    expected = protocol.FRAME_TYPES + protocol.CONVERSATION_FRAME_TYPES + protocol.BATCHED_FRAME_TYPES
    assert sorted(t for t in types if t) == sorted(expected)


def test_error_codes_are_the_protocols(doc: dict[str, Any]) -> None:
    """The error code enum lists chat.protocol.ERROR_CODES, in the same order."""
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == list(protocol.ERROR_CODES)


def test_limits_and_patterns_are_the_protocols(doc: dict[str, Any]) -> None:
    """Text length, sync limit, clientMsgId and username rules are the runtime's."""
    schemas = doc["components"]["schemas"]
    assert schemas["MessageText"]["maxLength"] == protocol.TEXT_LIMIT
    limit = schemas["SyncRequest"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1,
        protocol.SYNC_MAX_LIMIT,
        protocol.SYNC_DEFAULT_LIMIT,
    )
    assert schemas["ClientMsgId"]["pattern"] == protocol.CLIENT_MSG_ID_RE.pattern
    assert schemas["Username"]["pattern"] == USERNAME_RE.pattern
    for frame in ("MessageFrame", "AckFrame", "ErrorFrame"):
        assert schemas[frame]["properties"]["clientMsgId"]["pattern"] == protocol.CLIENT_MSG_ID_RE.pattern


def test_conversation_limits_and_patterns_are_the_protocols(doc: dict[str, Any]) -> None:
    """History's limit, the message id form and the inbox's 100 are the runtime's."""
    schemas = doc["components"]["schemas"]
    limit = schemas["HistoryRequest"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1,
        protocol.HISTORY_MAX_LIMIT,
        protocol.HISTORY_DEFAULT_LIMIT,
    )
    id_pattern = protocol.MESSAGE_ID_RE.pattern
    assert schemas["MessageId"]["pattern"] == id_pattern
    assert schemas["HistoryRequest"]["properties"]["before"]["pattern"] == id_pattern
    assert (
        schemas["InboxFrame"]["properties"]["conversations"]["maxItems"] == protocol.INBOX_MAX_CONVERSATIONS
    )
    assert set(schemas["MessageObject"]["required"]) == set(schemas["MessageFrame"]["required"]) - {"type"}


def message_object(
    message_id: str, cursor: Cursor, to: str | None, text: str, client_msg_id: str | None
) -> dict[str, Any]:
    """A message object as chat.protocol builds it, from alice at a fixed time."""
    return protocol.message_fields(
        message_id=message_id,
        cursor=cursor,
        sender="alice",
        to=to,
        text=text,
        sent_at="2026-11-27T09:30:00.123Z",
        client_msg_id=client_msg_id,
    )


def real_frames() -> dict[str, list[dict[str, Any]]]:
    """Frames as chat.protocol builds them, by message name in the document."""
    message_id = IdGenerator().new_id(1_795_771_800_123)
    cursor = Cursor.for_live(message_id, 30_000)
    return {
        "message": [
            protocol.message_frame(message_object(message_id, cursor, None, "hello", None)),
            protocol.message_frame(
                message_object(message_id, cursor, "bob", "x" * protocol.TEXT_LIMIT, "c-1")
            ),
        ],
        "messages": [
            json.loads(text)
            for text, _ in protocol.pack_messages(
                [
                    message_object(message_id, cursor, to, text, client_msg_id)
                    for to, text, client_msg_id in ((None, "hello", None), ("bob", "x" * 3000, "c-1"))
                ]
            )
        ],
        "ack": [
            protocol.ack_frame(message_id=message_id, cursor=cursor, client_msg_id=dup_id, duplicate=dup)
            for dup_id, dup in ((None, False), ("c-1", True))
        ],
        "presence": [
            protocol.presence_frame("bob", online, at="2026-11-27T09:30:00.123Z") for online in (True, False)
        ],
        "who": [protocol.who_frame([]), protocol.who_frame(["carol", "alice"])],
        "synced": [protocol.synced_frame(cursor, more=True, complete=False)],
        "pong": [protocol.pong_frame()],
        "error": [protocol.error_frame(code, "why", client_msg_id="c-9") for code in protocol.ERROR_CODES]
        + [protocol.error_frame("invalid_json", "not JSON")],
        **conversation_frames(message_id, cursor),
    }


def conversation_frames(message_id: str, cursor: Cursor) -> dict[str, list[dict[str, Any]]]:
    """Version 1.1's answers as chat.protocol builds them."""
    objects = [message_object(message_id, cursor, to, "hi", None) for to in (None, "bob")]
    rows = [
        protocol.Conversation(None, objects[0], 100, message_id, None),
        protocol.Conversation("bob", objects[1], 0, None, message_id),
        protocol.Conversation("carol", None, 0, None, None),
    ]
    return {
        "history": [
            protocol.fit_history(None, objects[:1], more=False),
            protocol.fit_history("bob", [], more=False),
        ],
        "typing": [protocol.typing_frame("alice")],
        "read": [
            protocol.read_frame("alice", None, message_id),
            protocol.read_frame("alice", "bob", message_id),
        ],
        "inbox": [protocol.inbox_frame(rows), protocol.inbox_frame(rows[:1])],
    }


@pytest.mark.parametrize("name", sorted(real_frames()))
def test_frames_the_runtime_builds_match_the_document(doc: dict[str, Any], name: str) -> None:
    """What chat.protocol sends validates against the document, which names every field it has."""
    check = payload_validator(doc, name)
    for frame in real_frames()[name]:
        check.validate(frame)
        assert protocol.encode(frame)  # and is sendable as JSON text


PARSERS = {
    "sendmessage": protocol.parse_send,
    "sync": protocol.parse_sync,
    "historyRequest": protocol.parse_history,
    "typingRequest": protocol.parse_typing,
    "readRequest": protocol.parse_read,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_client_examples_are_accepted_by_the_runtime(doc: dict[str, Any], name: str) -> None:
    """The document's request examples pass the runtime's own parsers."""
    parse = PARSERS[name]
    for example in doc["components"]["messages"][name]["examples"]:
        parse(example["payload"])


TOO_LONG = "x" * (protocol.TEXT_LIMIT + 1)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "sendmessage"},
        {"action": "sendmessage", "text": ""},
        {"action": "sendmessage", "text": 42},
        {"action": "sendmessage", "text": TOO_LONG},
        {"action": "sendmessage", "text": "hi", "to": "a"},
        {"action": "sendmessage", "text": "hi", "to": "has space"},
        {"action": "sendmessage", "text": "hi", "clientMsgId": ""},
        {"action": "sendmessage", "text": "hi", "clientMsgId": "x" * 65},
        {"action": "sendmessage", "text": "hi", "clientMsgId": "no spaces"},
    ],
)
def test_document_and_runtime_refuse_the_same_sends(doc: dict[str, Any], body: dict[str, Any]) -> None:
    """A send the document calls invalid is one the runtime refuses."""
    assert not payload_validator(doc, "sendmessage").is_valid(body)
    with pytest.raises(RejectedFrame):
        protocol.parse_send(body)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "sync", "limit": 0},
        {"action": "sync", "limit": protocol.SYNC_MAX_LIMIT + 1},
        {"action": "sync", "limit": "10"},
        {"action": "sync", "limit": 1.5},
        {"action": "sync", "since": ""},
        {"action": "sync", "since": 7},
        {"action": "sync", "batch": "true"},
        {"action": "sync", "batch": 1},
        {"action": "sync", "batch": None},
    ],
)
def test_document_and_runtime_refuse_the_same_syncs(doc: dict[str, Any], body: dict[str, Any]) -> None:
    """A sync the document calls invalid is one the runtime refuses."""
    assert not payload_validator(doc, "sync").is_valid(body)
    with pytest.raises(RejectedFrame):
        protocol.parse_sync(body)


AN_ID = IdGenerator().new_id(1_795_771_800_123)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("historyRequest", {"action": "history", "limit": 0}),
        ("historyRequest", {"action": "history", "limit": protocol.HISTORY_MAX_LIMIT + 1}),
        ("historyRequest", {"action": "history", "limit": True}),
        ("historyRequest", {"action": "history", "before": "not-an-id"}),
        ("historyRequest", {"action": "history", "before": AN_ID.lower()}),
        ("historyRequest", {"action": "history", "with": "a"}),
        ("typingRequest", {"action": "typing"}),
        ("typingRequest", {"action": "typing", "to": "has space"}),
        ("readRequest", {"action": "read", "with": "bob"}),
        ("readRequest", {"action": "read", "upTo": 5}),
        ("readRequest", {"action": "read", "upTo": "c1." + AN_ID}),
    ],
)
def test_document_and_runtime_refuse_the_same_conversation_requests(
    doc: dict[str, Any], name: str, body: dict[str, Any]
) -> None:
    """A history, typing or read request the document calls invalid is one the runtime refuses."""
    assert not payload_validator(doc, name).is_valid(body)
    with pytest.raises(RejectedFrame):
        PARSERS[name](body)
