"""moto's server, answering one request at a time (the local stack and the tests use it).

DynamoDB applies each request to an item atomically; moto's backend does not lock, and its stock
threaded server runs requests side by side, so two concurrent ``ADD`` updates to one item can both
read the old value. Serialising requests restores the atomicity the presence and idempotency logic
relies on (and that AWS provides), while the handlers still run concurrently.

The same lock lets a snapshot of moto's state (``persistence.py``) see it between two requests,
never halfway through one; ``changed`` says whether any request since the last snapshot may have
written something.

Two of moto's costs grow with the data and are cut here, with the same answers on the wire:
``TransactWriteItems`` copied whole tables (``ItemRollbackDynamoDBBackend``), and the answers that
carry items went through moto's model-driven serializer, attribute by attribute
(``serialize_items_as_plain_json``).
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import botocore.session
from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT
from moto.dynamodb.models.utilities import dynamo_to_dict
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_stack import moto_query

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TRANSACTION_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")
MAX_TRANSACTION_ITEMS = 100
# Requests that never change moto's state: anything else marks it changed (the safe default).
READ_ONLY_TARGETS = frozenset(
    {
        "DynamoDB_20120810.GetItem",
        "DynamoDB_20120810.BatchGetItem",
        "DynamoDB_20120810.Query",
        "DynamoDB_20120810.Scan",
        "DynamoDB_20120810.TransactGetItems",
        "DynamoDB_20120810.DescribeTable",
        "DynamoDB_20120810.DescribeTimeToLive",
        "DynamoDB_20120810.ListTables",
        "AWSCognitoIdentityProviderService.AdminGetUser",
        "AWSCognitoIdentityProviderService.DescribeUserPool",
        "AWSCognitoIdentityProviderService.DescribeUserPoolClient",
        "AWSCognitoIdentityProviderService.GetUser",
        "AWSCognitoIdentityProviderService.ListUsers",
    }
)

# DynamoDB operations whose answers hold only items, keys, counts and consumed capacity: DynamoDB
# JSON throughout, so ``json.dumps`` writes what moto's serializer would.
PLAIN_JSON_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)
DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0"
# moto's own answer writer, kept for every other operation (and for tests that compare the two).
MOTO_SERIALIZED = DynamoHandler.serialized
_MOTO_RESULT = DynamoResult
MOTO_ENRICH = DynamoHandler._enrich_response

ItemKey = tuple[str, DynamoType, DynamoType | None]
ITEM_WRITE_TARGETS = frozenset(
    f"DynamoDB_20120810.{name}"
    for name in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
)
# The items the request being served wrote (set only while a server request runs).
_request = threading.local()


@dataclass(frozen=True)
class ItemWrite:
    """One item as a request left it: its key, and its attributes (None once deleted)."""

    account: str
    region: str
    table: str
    key: dict[str, Any]
    item: dict[str, Any] | None

    def entry(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "table": self.table,
            "key": self.key,
            "item": self.item,
        }


@dataclass
class Changes:
    """What requests changed since the last snapshot, besides the items they journal."""

    tables: bool = False
    cognito: bool = False


class ItemRollbackDynamoDBBackend(DynamoDBBackend):
    """moto's DynamoDB, with transactions that back up the items they write instead of whole tables.

    moto 5.2.5 deep-copies every table a ``TransactWriteItems`` names before applying it, to put
    the copies back if one write fails. Every chat send is a transaction on the Messages table, so
    each send copied the whole history: memory grew by about the table's size per send (the
    copies' reference cycles outlive the call) and each send was slower than the last.

    A transaction writes at most 100 items, one write each (moto refuses two on one item), so
    copying just those items before their write is a complete backup: on any failure each is put
    back as it was (or removed, if it did not exist), and the transaction leaves nothing behind,
    as on DynamoDB. Requests are serialised (``AtomicMotoServer``), so no other request sees the
    items in between. The rest follows moto's own method: the same checks, the same errors, the
    same cancellation reasons.
    """

    @property
    def _url_module(self) -> Any:
        # moto finds a backend's routes next to the class's module; these are DynamoDB's.
        return importlib.import_module("moto.dynamodb.urls")

    # -- every item write is noted, for the journal (``persistence.py``)

    def put_item(self, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
        item = super().put_item(table_name, item_attrs, *args, **kwargs)
        self._note(table_name, item.hash_key, item.range_key)
        return item

    def update_item(self, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
        item = super().update_item(table_name, key, *args, **kwargs)
        self._note(table_name, item.hash_key, item.range_key)
        return item

    def delete_item(self, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item | None:
        hash_value, range_value = self.get_keys_value(self.get_table(table_name), key)
        item = super().delete_item(table_name, key, *args, **kwargs)
        self._note(table_name, hash_value, range_value)
        return item

    def _note(self, table_name: str, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        noted = getattr(_request, "writes", None)
        if noted is not None:
            noted[(self.account_id, self.region_name, table_name, hash_value, range_value)] = None

    def item_writes(self, keys: Iterable[tuple[str, DynamoType, DynamoType | None]]) -> list[ItemWrite]:
        """The current state of each item, by table and key values."""
        writes = []
        for table_name, hash_value, range_value in keys:
            table = self.tables.get(table_name)
            if table is None:
                continue
            key = {table.hash_key_attr: hash_value.to_json()}
            if table.range_key_attr is not None and range_value is not None:
                key[table.range_key_attr] = range_value.to_json()
            current = table.get_item(hash_value, range_value)
            attributes = None if current is None else current.to_json()["Attributes"]
            writes.append(ItemWrite(self.account_id, self.region_name, table_name, key, attributes))
        return writes

    # -- the Connections Scan, without moto's copy of every item

    def scan(
        self,
        table_name: str,
        filters: dict[str, Any],
        limit: int,
        exclusive_start_key: dict[str, Any],
        filter_expression: str | None,
        expr_names: dict[str, Any],
        expr_values: dict[str, Any],
        index_name: str,
        consistent_read: bool,
        projection_expression: list[list[str]] | None,
        segments: tuple[None, None] | tuple[int, int],
    ) -> tuple[list[Item], int, dict[str, Any] | None]:
        names = _top_level_names(projection_expression)
        simple = not (filters or filter_expression or index_name or exclusive_start_key or limit)
        if names is None or not simple or segments != (None, None):
            return super().scan(  # type: ignore[no-any-return]
                table_name,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                expr_names,
                expr_values,
                index_name,
                consistent_read,
                projection_expression,
                segments,
            )
        return projected_scan(self.get_table(table_name), names, projection_expression or [])

    # -- Query: one partition's items, not the table's

    def query(
        self,
        table_name: str,
        hash_key_dict: dict[str, Any] | None,
        range_comparison: str | None,
        range_value_dicts: list[dict[str, Any]],
        limit: int,
        exclusive_start_key: dict[str, Any],
        scan_index_forward: bool,
        projection_expressions: list[list[str]] | None,
        index_name: str | None = None,
        consistent_read: bool = False,
        expr_names: dict[str, str] | None = None,
        expr_values: dict[str, dict[str, str]] | None = None,
        filter_expression: str | None = None,
        hash_key_conditions: list[tuple[str, dict[str, Any]]] | None = None,
        range_key_conditions: list[tuple[str, str, list[dict[str, Any]]]] | None = None,
        **filter_kwargs: Any,
    ) -> tuple[list[Item], int, dict[str, Any] | None]:
        """moto's Query, answered from the partition alone when ``keyed_query`` takes it (see
        moto_query.py); then filtered and projected as moto's ``Table.query`` does. Its deep copy
        of the page is left out: the answer is written out within this request, under the lock,
        and neither the filter nor the projection changes an item."""
        page = moto_query.keyed_query(
            self.get_table(table_name),
            hash_key_dict,
            range_comparison,
            range_value_dicts,
            limit,
            exclusive_start_key,
            scan_index_forward,
            index_name=index_name,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            filter_kwargs=filter_kwargs,
        )
        if page is None:
            return super().query(
                table_name,
                hash_key_dict,
                range_comparison,
                range_value_dicts,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                consistent_read,
                expr_names,
                expr_values,
                filter_expression,
                hash_key_conditions,
                range_key_conditions,
                **filter_kwargs,
            )
        items, scanned_count, last_evaluated_key = page
        condition = get_filter_expression(filter_expression, expr_names, expr_values)
        if condition is not None:
            items = [item for item in items if condition.expr(item)]
        if projection_expressions:
            items = [item.project(projection_expressions) for item in items]
        return items, scanned_count, last_evaluated_key

    # -- transactions

    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > MAX_TRANSACTION_ITEMS:
            raise TooManyTransactionsException()
        backups: dict[ItemKey, Item | None] = {}
        targets: set[tuple[str, str]] = set()
        errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
        for transact_item in transact_items:
            if len(transact_item) > 1:
                self._restore(backups)
                raise TransactWriteSingleOpException
            op_type, op = next(iter(transact_item.items()))
            try:
                errors.append(self._transact_one(op_type, op, targets, backups))
            except (MultipleTransactionsException, MockValidationException):
                self._restore(backups)
                raise
            except Exception as exc:  # noqa: BLE001 - a cancellation reason, as moto reports it
                errors.append((type(exc).__name__, str(exc), None))
        if any(code is not None for code, _, _ in errors):
            self._restore(backups)
            raise TransactionCanceledException(errors)

    def _transact_one(
        self,
        op_type: str,
        op: dict[str, Any],
        targets: set[tuple[str, str]],
        backups: dict[ItemKey, Item | None],
    ) -> tuple[str | None, str | None, dict[str, Any] | None]:
        if op_type not in TRANSACTION_OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        table = self.get_table(table_name)
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)

        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        condition = op.get("ConditionExpression")
        current = self.get_item(table_name, key)
        if condition is not None and not get_filter_expression(condition, names, values).expr(current):
            old = (
                current.to_json()["Attributes"]
                if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            return ("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old)

        if op_type != "ConditionCheck":
            hash_value, range_value = self.get_keys_value(table, key)
            # Before the write: update_item changes the stored Item in place.
            backups.setdefault((table_name, hash_value, range_value), copy.deepcopy(current))
        if op_type == "Put":
            self.put_item(table_name, op["Item"])
        elif op_type == "Delete":
            self.delete_item(table_name, key)
        elif op_type == "Update":
            self.update_item(
                table_name,
                key,
                update_expression=op["UpdateExpression"],
                expression_attribute_names=names or {},
                expression_attribute_values=values or {},
            )
        return (None, None, None)

    def _restore(self, backups: dict[ItemKey, Item | None]) -> None:
        """Put every written item back as it was before the transaction (or remove it)."""
        for (table_name, hash_value, range_value), item in backups.items():
            table = self.tables[table_name]
            if item is None:
                table.delete_item(hash_value, range_value)
            elif range_value is not None:
                table.items[hash_value][range_value] = item
            else:
                table.items[hash_value] = item


def projected_scan(
    table: Any, names: list[str], projection: list[list[str]]
) -> tuple[list[Item], int, dict[str, Any] | None]:
    """A whole-table Scan with a projection of top-level attributes: moto's answer, the same items
    in the same order, the same 1 MB page end, without its deep copy of every item.

    moto copies each item in full, then projects the copy through plain JSON and back. A string
    attribute comes out of that unchanged, so it is taken as it is; an item with another type among
    the projected attributes goes through moto's own projection (which reads, never writes).
    """
    results: list[Item] = []
    result_size = 0
    scanned = 0
    last_full: Item | None = None
    last_key = None
    for item in table.all_items():
        size = item.size()
        if result_size + size > RESULT_SIZE_LIMIT:
            last_key = table._get_last_evaluated_key(last_full, None)
            break
        attrs = item.attrs
        if all(attrs[name].type == "S" for name in names if name in attrs):
            kept = {name: {"S": attrs[name].value} for name in names if name in attrs}
            results.append(Item(hash_key=item.hash_key, range_key=item.range_key, attrs=kept))
        else:
            results.append(item.project(projection))
        last_full = item
        result_size += size
        scanned += 1
    return results, scanned, last_key


def _top_level_names(projection: list[list[str]] | None) -> list[str] | None:
    """The attribute names of a projection of top-level attributes only (no paths, no indexes)."""
    if not projection or any(len(path) != 1 or "[" in path[0] for path in projection):
        return None
    return list(dict.fromkeys(path[0] for path in projection))


def use_item_rollback() -> None:
    """Make moto build ``ItemRollbackDynamoDBBackend`` for every account and region from now on."""
    dynamodb_backends.backend = ItemRollbackDynamoDBBackend
    for account in dynamodb_backends.values():
        account.backend = ItemRollbackDynamoDBBackend
        for backend in account.values():
            if type(backend) is DynamoDBBackend:
                backend.__class__ = ItemRollbackDynamoDBBackend  # same state, the lighter transaction


def serialize_items_as_plain_json() -> None:
    """Answer item-bearing DynamoDB operations with ``json.dumps`` of moto's result.

    moto's serializer walks the service model for every attribute of every item: a Scan of the
    200 rows of the Connections table cost it tens of milliseconds, inside the lock that every
    other request waits on, on every public message. The result is DynamoDB JSON already (moto
    turns its values into ``{"S": ...}`` maps, binary into bytes), so plain JSON with bytes in
    base64 is the same answer. Errors, and every other operation, still take moto's own path.
    """
    generic = MOTO_SERIALIZED
    if DynamoHandler.serialized is not generic:
        return

    def serialized(self: DynamoHandler, action_result: Any) -> tuple[int, dict[str, str], str]:
        result = action_result.result
        operation = self._get_action()
        # Consumed capacity (only when asked for) has typed numbers: moto's path writes those.
        if (
            not isinstance(result, dict)
            or operation not in PLAIN_JSON_OPERATIONS
            or "ConsumedCapacity" in result
        ):
            return generic(self, action_result)  # type: ignore[no-any-return]
        members = _output_members(operation)
        answer = {name: value for name, value in result.items() if name in members}
        headers = {"Content-Type": DYNAMODB_CONTENT_TYPE, **self.response_headers}
        return 200, headers, json.dumps(answer, default=_base64, separators=(",", ":"))

    DynamoHandler.serialized = serialized  # type: ignore[method-assign]


@functools.cache
def _output_members(operation: str) -> frozenset[str]:
    """The fields DynamoDB's answer to ``operation`` has (moto's results carry a few more)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    return frozenset(model.operation_model(operation).output_shape.members)


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def skip_request_id_search_in_json() -> None:
    """Leave out moto's search of every DynamoDB answer for an XML ``<RequestId>`` to rewrite.

    moto runs a regular expression with a look-behind for ``<RequestId>`` over each answer's whole
    body, which for a page of 1,000 items is a scan of a few hundred KB that finds nothing: JSON has
    no such element. When the text is not in the body the expression cannot match, so the body is
    returned as it is; otherwise moto's own code runs. The headers are moto's in either case.
    """
    if DynamoHandler._enrich_response is not MOTO_ENRICH:
        return

    def enrich(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            return MOTO_ENRICH(headers, "")[0], body
        return MOTO_ENRICH(headers, body)

    DynamoHandler._enrich_response = staticmethod(enrich)  # type: ignore[method-assign,assignment]


# Attribute types whose value moto's dynamo_to_dict hands on as it is (a string, or a boolean).
_AS_STORED = frozenset({"S", "N", "BOOL", "NULL"})


def convert_results_directly() -> None:
    """Turn moto's DynamoDB results into plain data without its recursion into every string.

    moto's ``DynamoResult`` runs ``dynamo_to_dict`` over the whole result: four type tests for each
    attribute value and four more for the string inside it, for every item of a page. Here a string,
    number, boolean or null attribute becomes ``{type: value}`` at once (what that recursion returns
    for it), containers are walked the same way, and anything else still goes to
    ``dynamo_to_dict``: the same data (tests/local_stack/test_moto_query.py compares the two).
    """
    from moto.dynamodb import responses

    if responses.DynamoResult is not _MOTO_RESULT:
        return
    responses.DynamoResult = DirectResult  # type: ignore[misc]


class DirectResult(ActionResult):
    """moto's ``DynamoResult``, converted by ``plain_data``."""

    def __init__(self, result: object) -> None:
        super().__init__(plain_data(result))


def plain_data(value: Any) -> Any:
    """What ``dynamo_to_dict(value)`` returns."""
    kind = type(value)
    if kind is DynamoType and value.type in _AS_STORED and type(value.value) in (str, bool):
        return {value.type: value.value}
    if kind is dict or kind is LimitedSizeDict:  # an item's attributes are the latter
        return {key: plain_data(member) for key, member in value.items()}
    if kind is list:
        return [plain_data(member) for member in value]
    return dynamo_to_dict(value)


WriteListener = Callable[[list[ItemWrite]], None]


def serve_revoke_token() -> None:
    """Give moto's Cognito ``RevokeToken`` (moto 5.2 lacks it), as the deployed pool has it.

    The refresh token is marked revoked exactly as moto's own ``GlobalSignOut`` marks every token
    of a user, so ``REFRESH_TOKEN_AUTH`` with it answers ``NotAuthorizedException`` ("Refresh Token
    has been revoked"), and the mark is kept with moto's state. The other sessions of the user go
    on. A token of another app client is refused as Cognito refuses it; an unknown one is revoked
    already (OAuth token revocation answers success for it).
    """
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    if hasattr(CognitoIdpResponse, "revoke_token"):
        return

    def revoke_token(self: CognitoIdpResponse) -> ActionResult:
        token, client_id = self._get_param("Token"), self._get_param("ClientId")
        for pool in self.backend.user_pools.values():
            issued = pool.refresh_tokens.get(token)
            if issued is None:
                continue
            if issued[0] != client_id:
                raise NotAuthorizedError("The token was not issued to this client")
            pool.refresh_tokens[token] = None
        return EmptyResult()

    CognitoIdpResponse.revoke_token = revoke_token  # type: ignore[attr-defined]


class AtomicMotoServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        use_item_rollback()
        serialize_items_as_plain_json()
        convert_results_directly()
        skip_request_id_search_in_json()
        serve_revoke_token()
        # Held for each whole request, and by whoever reads moto's state as a whole.
        self.lock = threading.Lock()
        self.changed = Changes()
        # Told, inside the lock, of the items each request wrote (the journal).
        self.on_writes: WriteListener | None = None
        app = self._one_at_a_time(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> AtomicMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()

    def _one_at_a_time(self, app: WsgiApp) -> WsgiApp:
        def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET")
            with self.lock:
                _request.writes = {}
                try:
                    answer = list(app(environ, start_response))  # the whole response, inside the lock
                    self._note_changes(environ, target, list(_request.writes))
                finally:
                    _request.writes = None
                return answer

        return serialized

    def _note_changes(self, environ: dict[str, Any], target: str | None, written: list[Any]) -> None:
        if target in READ_ONLY_TARGETS or (
            target is None and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
        ):
            return  # GET: the JWKS, for one
        if target in ITEM_WRITE_TARGETS:
            if self.on_writes is not None and written:
                self.on_writes(_current_states(written))
            return
        # Only DynamoDB and Cognito are kept; SQS (the presence checks) starts empty each run.
        if target is not None and target.startswith("DynamoDB_"):
            self.changed.tables = True
        elif target is not None and target.startswith("AWSCognitoIdentityProviderService."):
            self.changed.cognito = True


def _current_states(written: list[tuple[str, str, str, DynamoType, DynamoType | None]]) -> list[ItemWrite]:
    states: list[ItemWrite] = []
    for account, region, table_name, hash_value, range_value in written:
        backend = dynamodb_backends[account][region]
        states += backend.item_writes([(table_name, hash_value, range_value)])
    return states
