"""DynamoDB adapter: connections, per-user presence and the message history (see infra/schema.py).

Every write that decides something (first connection, last connection, duplicate send) is a single
conditional or atomic DynamoDB operation, never read-then-write, so concurrent Lambdas agree.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.cursor import lowest_id_at
from chat.errors import DependencyError
from chat.limits import Spent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PUBLIC_FEED = "public"

# Bounded attempts keep a write's landing time well inside the cursor overlap window (chat.cursor).
_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,
)


def user_feed(username: str) -> str:
    """The partition holding a user's private messages, sent and received."""
    return f"user#{username}"


def _dedup_feed(username: str) -> str:
    return f"dedup#{username}"


def _rate_feed(username: str) -> str:
    """The partition of a user's rate-limit buckets, one item per route."""
    return f"rate#{username}"


@dataclass(frozen=True)
class Connection:
    connection_id: str
    username: str


@dataclass(frozen=True)
class StoredMessage:
    id: str
    sender: str
    to: str | None
    text: str
    sent_at: str
    client_msg_id: str | None


@dataclass(frozen=True)
class SaveResult:
    """``message_id`` is the original one when ``duplicate`` is true; ``undelivered`` is then the
    original message if its fan-out was never recorded as complete."""

    message_id: str
    duplicate: bool
    undelivered: StoredMessage | None = None


@dataclass(frozen=True)
class Page:
    """Messages read for a sync, oldest first; ``more`` when a feed had more than was taken."""

    messages: list[StoredMessage]
    more: bool


class ChatStore:
    def __init__(
        self,
        *,
        connections_table: str,
        presence_table: str,
        messages_table: str,
        client: DynamoDBClient | None = None,
    ) -> None:
        self.connections_table = connections_table
        self.presence_table = presence_table
        self.messages_table = messages_table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=_CLIENT_CONFIG)
        return self._client

    # ---- connections and presence --------------------------------------------------------------

    def add_connection(self, connection: Connection, *, now: float, ttl_seconds: int) -> bool:
        """Record an open connection; True when it is the user's first (the user came online)."""
        expires_at = str(int(now + ttl_seconds))
        with _wrapped("record the connection"):
            self.client.put_item(
                TableName=self.connections_table,
                Item={
                    "connectionId": {"S": connection.connection_id},
                    "username": {"S": connection.username},
                    "connectedAt": {"N": str(int(now))},
                    "expiresAt": {"N": expires_at},
                },
            )
            old = self.client.update_item(
                TableName=self.presence_table,
                Key={"username": {"S": connection.username}},
                UpdateExpression="ADD conns :conn SET expiresAt = :expires",
                ExpressionAttributeValues={
                    ":conn": {"SS": [connection.connection_id]},
                    ":expires": {"N": expires_at},
                },
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        previous = set(old.get("conns", {}).get("SS", [])) - {connection.connection_id}
        if previous and float(old.get("expiresAt", {}).get("N", "0")) < now:
            # Every earlier connection outlived its TTL without a $disconnect: they are stale.
            self._forget_presence(connection.username, previous)
            previous = set()
        return not previous

    def remove_connection(self, connection: Connection, *, connected_before: float | None = None) -> bool:
        """Forget a connection (idempotent); True when it was the user's last (the user went offline).

        With ``connected_before``, a connection recorded at or after that time is kept: API Gateway
        answers 410 for a socket still inside its own $connect, which is not a dead one.
        """
        try:
            self.client.delete_item(
                TableName=self.connections_table,
                Key={"connectionId": {"S": connection.connection_id}},
                **_recorded_before(connected_before),
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False  # too young to be dead
            raise DependencyError("could not remove the connection") from exc
        except BotoCoreError as exc:
            raise DependencyError("could not remove the connection") from exc
        old_conns = self._forget_presence(connection.username, {connection.connection_id})
        return old_conns == {connection.connection_id}

    def _forget_presence(self, username: str, connection_ids: set[str]) -> set[str]:
        """Remove ids from the user's presence set; returns the set as it was before."""
        try:
            old = self.client.update_item(
                TableName=self.presence_table,
                Key={"username": {"S": username}},
                UpdateExpression="DELETE conns :conns",
                ConditionExpression="attribute_exists(username)",
                ExpressionAttributeValues={":conns": {"SS": sorted(connection_ids)}},
                ReturnValues="UPDATED_OLD",
            ).get("Attributes", {})
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return set()  # no presence item: nothing to forget
            raise DependencyError("could not update presence") from exc
        except BotoCoreError as exc:
            raise DependencyError("could not update presence") from exc
        old_conns = set(old.get("conns", {}).get("SS", []))
        if old_conns and old_conns <= connection_ids:
            self._delete_presence_if_empty(username)
        return old_conns

    def _delete_presence_if_empty(self, username: str) -> None:
        # Conditional: a connection that arrived in between keeps the item (and the user online).
        try:
            self.client.delete_item(
                TableName=self.presence_table,
                Key={"username": {"S": username}},
                ConditionExpression="attribute_not_exists(conns)",
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise DependencyError("could not update presence") from exc

    def connections_of(self, username: str) -> list[Connection]:
        """Every open connection of one user, by the ``byUser`` index (a Query, never a Scan)."""
        connections: list[Connection] = []
        with _wrapped("list the user's connections"):
            paginator = self.client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.connections_table,
                IndexName="byUser",
                KeyConditionExpression="username = :u",
                ExpressionAttributeValues={":u": {"S": username}},
            ):
                connections += [_connection(item) for item in page.get("Items", [])]
        return connections

    def all_connections(self) -> Iterator[list[Connection]]:
        """Every open connection, a Scan page at a time (pages stop at 1 MB; all of them are read)."""
        with _wrapped("list the connections"):
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.connections_table, ProjectionExpression="connectionId, username"
            ):
                yield [_connection(item) for item in page.get("Items", [])]

    def online_users(self, *, now: float) -> list[str]:
        """Users with at least one connection that has not outlived its TTL."""
        users: list[str] = []
        with _wrapped("list who is online"):
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.presence_table,
                FilterExpression="expiresAt > :now AND attribute_exists(conns)",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
                ProjectionExpression="username",
            ):
                users += [item["username"]["S"] for item in page.get("Items", [])]
        return sorted(users)

    def spend_budget(
        self,
        username: str,
        route: str,
        *,
        now_ms: int,
        step_ms: int,
        ceiling_ms: int,
        expires_at: int,
        idle_first: bool,
    ) -> Spent:
        """Advance the user's token bucket for ``route`` by ``step_ms`` unless it would pass
        ``ceiling_ms`` (chat.limits has the rule). The bucket is one item, ``tat`` in milliseconds.

        DynamoDB has no ``max()``, so the two cases are two conditional updates: an idle bucket
        (``tat`` before now, or no item) restarts from now; a busy one moves on from its ``tat``.
        ``idle_first`` guesses which: one UpdateItem when right, two when wrong (three under a race).
        A failed condition returns the item, so a refusal costs one call and writes nothing.
        """
        key = {"feed": {"S": _rate_feed(username)}, "id": {"S": route}}
        now, expires = {"N": str(now_ms)}, {"N": str(expires_at)}
        idle = {
            "UpdateExpression": "SET tat = :fresh, expiresAt = :exp",
            "ConditionExpression": "attribute_not_exists(tat) OR tat < :now",
            "ExpressionAttributeValues": {
                ":now": now,
                ":exp": expires,
                ":fresh": {"N": str(now_ms + step_ms)},
            },
        }
        busy = {
            "UpdateExpression": "SET tat = tat + :step, expiresAt = :exp",
            "ConditionExpression": "tat BETWEEN :now AND :ceiling",
            "ExpressionAttributeValues": {
                ":now": now,
                ":exp": expires,
                ":step": {"N": str(step_ms)},
                ":ceiling": {"N": str(ceiling_ms)},
            },
        }
        attempts = [idle, busy, idle] if idle_first else [busy, idle, busy]
        tat = now_ms
        for attempt in attempts:
            updated, current = self._conditional_update(key, attempt)
            if updated is not None:
                return Spent(admitted=True, tat_ms=int(updated["tat"]["N"]))
            if "tat" in current:
                tat = int(current["tat"]["N"])
                if tat > ceiling_ms:
                    return Spent(admitted=False, tat_ms=tat)
        return Spent(admitted=False, tat_ms=tat)  # lost every race: refuse this once

    def _conditional_update(
        self, key: dict[str, Any], update: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the updated attributes, {}) or, when the condition failed, (None, the item as it is)."""
        with _wrapped("check the rate limit"):
            try:
                answer = self.client.update_item(
                    TableName=self.messages_table,
                    Key=key,
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **update,
                )
            except ClientError as exc:
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise
                # DynamoDB returns the item as it is (ReturnValuesOnConditionCheckFailure).
                item = cast(dict[str, Any], exc.response.get("Item", {}))
                return None, item
        return answer["Attributes"], {}

    # ---- messages ------------------------------------------------------------------------------

    def save_message(
        self, message: StoredMessage, *, idempotency_key: str | None, expires_at: int
    ) -> SaveResult:
        """Store a message durably; with an idempotency key, at most once per sender and key.

        The message items and the key's record are one transaction: either all exist or none.
        """
        feeds = [PUBLIC_FEED] if message.to is None else [user_feed(message.sender), user_feed(message.to)]
        writes: list[Any] = [
            {"Put": {"TableName": self.messages_table, "Item": _message_item(message, feed, expires_at)}}
            for feed in dict.fromkeys(feeds)
        ]
        if idempotency_key is not None:
            writes.insert(0, self._dedup_write(message, idempotency_key, feeds[0], expires_at))
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if idempotency_key is not None and _first_condition_failed(exc):
                return self._duplicate_of(message.sender, idempotency_key)
            raise DependencyError("could not store the message") from exc
        except BotoCoreError as exc:
            raise DependencyError("could not store the message") from exc
        return SaveResult(message.id, duplicate=False)

    def mark_delivered(self, sender: str, idempotency_key: str) -> None:
        """Record that a message's fan-out completed, so a resend does not deliver it again."""
        with _wrapped("record the delivery"):
            self.client.update_item(
                TableName=self.messages_table,
                Key={"feed": {"S": _dedup_feed(sender)}, "id": {"S": idempotency_key}},
                UpdateExpression="SET delivered = :yes",
                ConditionExpression="attribute_exists(feed)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )

    def _dedup_write(self, message: StoredMessage, key: str, feed: str, expires_at: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.messages_table,
                "Item": {
                    "feed": {"S": _dedup_feed(message.sender)},
                    "id": {"S": key},
                    "messageId": {"S": message.id},
                    "messageFeed": {"S": feed},
                    "expiresAt": {"N": str(expires_at)},
                },
                "ConditionExpression": "attribute_not_exists(feed)",
            }
        }

    def _duplicate_of(self, sender: str, key: str) -> SaveResult:
        with _wrapped("read the original message"):
            record = self.client.get_item(
                TableName=self.messages_table,
                Key={"feed": {"S": _dedup_feed(sender)}, "id": {"S": key}},
                ConsistentRead=True,
            ).get("Item")
            if record is None:  # the record expired between the two calls: retention has passed
                raise DependencyError("the original message is past retention")
            message_id = record["messageId"]["S"]
            if record.get("delivered", {}).get("BOOL"):
                return SaveResult(message_id, duplicate=True)
            original = self.client.get_item(
                TableName=self.messages_table,
                Key={"feed": record["messageFeed"], "id": {"S": message_id}},
                ConsistentRead=True,
            ).get("Item")
        return SaveResult(
            message_id, duplicate=True, undelivered=_stored_message(original) if original else None
        )

    def read_since(self, feeds: list[str], *, floor_ms: int, after: str, limit: int, now: float) -> Page:
        """Messages stamped from ``floor_ms`` on, oldest first: all up to ``after`` plus ``limit`` newer."""
        per_feed = [self._read_feed(s, floor_ms=floor_ms, after=after, limit=limit, now=now) for s in feeds]
        merged = list(heapq.merge(*(messages for messages, _ in per_feed), key=lambda m: m.id))
        repeats = [m for m in merged if m.id <= after]
        newer = [m for m in merged if m.id > after]
        more = len(newer) > limit or any(feed_more for _, feed_more in per_feed)
        return Page(messages=repeats + newer[:limit], more=more)

    def _read_feed(
        self, feed: str, *, floor_ms: int, after: str, limit: int, now: float
    ) -> tuple[list[StoredMessage], bool]:
        messages: list[StoredMessage] = []
        newer = 0
        with _wrapped("read the history"):
            paginator = self.client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self.messages_table,
                KeyConditionExpression="feed = :s AND id >= :floor",
                # TTL deletes lazily: an item past its expiry is already gone as far as clients know.
                FilterExpression="expiresAt > :now",
                ExpressionAttributeValues={
                    ":s": {"S": feed},
                    ":floor": {"S": lowest_id_at(floor_ms)},
                    ":now": {"N": str(int(now))},
                },
                ConsistentRead=True,
                PaginationConfig={"PageSize": min(limit + 1, 500)},
            )
            for page in pages:
                for item in page.get("Items", []):
                    message = _stored_message(item)
                    newer += message.id > after
                    if newer > limit:
                        return messages, True
                    messages.append(message)
        return messages, False

    def latest(self, feeds: list[str], *, limit: int, now: float) -> list[StoredMessage]:
        """The latest ``limit`` messages across ``feeds``, oldest first."""
        newest_first: list[StoredMessage] = []
        with _wrapped("read the history"):
            for feed in feeds:
                response = self.client.query(
                    TableName=self.messages_table,
                    KeyConditionExpression="feed = :s",
                    FilterExpression="expiresAt > :now",
                    ExpressionAttributeValues={":s": {"S": feed}, ":now": {"N": str(int(now))}},
                    ScanIndexForward=False,
                    Limit=limit,
                    ConsistentRead=True,
                )
                newest_first += [_stored_message(item) for item in response.get("Items", [])]
        newest_first.sort(key=lambda m: m.id, reverse=True)
        return list(reversed(newest_first[:limit]))


def _recorded_before(cutoff: float | None) -> dict[str, Any]:
    """A DeleteItem condition: the item is gone already or was recorded before ``cutoff``."""
    if cutoff is None:
        return {}
    return {
        "ConditionExpression": "attribute_not_exists(connectionId) OR connectedAt < :cutoff",
        "ExpressionAttributeValues": {":cutoff": {"N": str(int(cutoff))}},
    }


# ---- item mapping ------------------------------------------------------------------------------


def _connection(item: dict[str, Any]) -> Connection:
    return Connection(connection_id=item["connectionId"]["S"], username=item["username"]["S"])


def _message_item(message: StoredMessage, feed: str, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "feed": {"S": feed},
        "id": {"S": message.id},
        "from": {"S": message.sender},
        "text": {"S": message.text},
        "sentAt": {"S": message.sent_at},
        "expiresAt": {"N": str(expires_at)},
    }
    if message.to is not None:
        item["to"] = {"S": message.to}
    if message.client_msg_id is not None:
        item["clientMsgId"] = {"S": message.client_msg_id}
    return item


def _stored_message(item: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        id=item["id"]["S"],
        sender=item["from"]["S"],
        to=item["to"]["S"] if "to" in item else None,
        text=item["text"]["S"],
        sent_at=item["sentAt"]["S"],
        client_msg_id=item["clientMsgId"]["S"] if "clientMsgId" in item else None,
    )


# ---- errors ------------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _first_condition_failed(exc: ClientError) -> bool:
    """A cancelled transaction whose first write (the dedup record) failed its condition."""
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"


@contextmanager
def _wrapped(doing: str) -> Iterator[None]:
    """Turn SDK failures into DependencyError naming what was being done."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise DependencyError(f"could not {doing}") from exc
