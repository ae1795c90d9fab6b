"""DynamoDB's read consistency, which moto does not have, put back on a boto3 client for tests.

On AWS a read that does not ask for ``ConsistentRead`` (and every read of a global secondary index,
which cannot ask) may miss a write that completed a moment ago. moto always answers with the latest
data, so code that forgets ``ConsistentRead`` passes every test there. ``ReadLag`` registers
botocore event hooks on one client: it notes the key of every item that client writes, and hides
an item written less than ``seconds`` ago from every answer of that client that was not read
strongly consistently. That is DynamoDB's documented worst case, held still for as long as a test
needs.
"""

from __future__ import annotations

import json
import time
from typing import Any

WRITES = ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem")
READS = ("GetItem", "BatchGetItem", "Query", "Scan")


class ReadLag:
    def __init__(self, client: Any, *, seconds: float) -> None:
        self.seconds = seconds
        self.hidden = 0  # items hidden so far: a test can show the lag was in play
        self._client = client
        self._key_names: dict[str, list[str]] = {}
        self._written: dict[tuple[str, str], float] = {}
        events = client.meta.events
        for operation in WRITES:
            events.register(f"before-parameter-build.dynamodb.{operation}", self._note_write)
        for operation in READS:
            events.register(f"before-parameter-build.dynamodb.{operation}", self._keep_request)
            events.register(f"after-call.dynamodb.{operation}", self._hide_recent)

    # ---- writes --------------------------------------------------------------------------------

    def _note_write(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        for table, item in _written_items(model.name, params):
            self._written[(table, self._key(table, item))] = time.monotonic()

    # ---- reads ---------------------------------------------------------------------------------

    def _keep_request(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["read_lag_request"] = params

    def _hide_recent(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        request = context.get("read_lag_request", {})
        if model.name == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                if not request.get("RequestItems", {}).get(table, {}).get("ConsistentRead"):
                    items[:] = [item for item in items if not self._recent(table, item)]
            return
        table = request.get("TableName", "")
        strongly_consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
        if strongly_consistent:
            return
        if model.name == "GetItem":
            if "Item" in parsed and self._recent(table, parsed["Item"]):
                del parsed["Item"]
            return
        kept = [item for item in parsed.get("Items", []) if not self._recent(table, item)]
        parsed["Items"], parsed["Count"] = kept, len(kept)

    def _recent(self, table: str, item: dict[str, Any]) -> bool:
        written = self._written.get((table, self._key(table, item)))
        recent = written is not None and time.monotonic() - written < self.seconds
        self.hidden += recent
        return recent

    def _key(self, table: str, item: dict[str, Any]) -> str:
        if table not in self._key_names:
            # Asked once per table, before any hook can be in the middle of a call of this client.
            schema = self._client.describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [key["AttributeName"] for key in schema]
        return json.dumps([item.get(name) for name in self._key_names[table]], sort_keys=True)

    def know(self, *tables: str) -> ReadLag:
        """Learn these tables' keys now (call before the test's writes begin)."""
        for table in tables:
            self._key(table, {})
        return self


def _written_items(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, item or key) for each item a write request touches."""
    if operation == "PutItem":
        return [(params["TableName"], params["Item"])]
    if operation == "UpdateItem":
        return [(params["TableName"], params["Key"])]
    if operation == "BatchWriteItem":
        return [
            (table, request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"])
            for table, requests in params["RequestItems"].items()
            for request in requests
        ]
    written = []
    for action in params["TransactItems"]:
        for kind, body in action.items():
            if kind in ("Put", "Update"):
                written.append((body["TableName"], body.get("Item") or body["Key"]))
    return written
