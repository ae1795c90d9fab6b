"""DynamoDB adapter: connections, per-user presence and the message history (see infra/schema.py).

Every write that decides something (first connection, last connection, duplicate send) is a single
conditional or atomic DynamoDB operation, never read-then-write, so concurrent Lambdas agree. Every
read that decides who gets a frame, or what a sync returns, is strongly consistent (no index is read:
DynamoDB serves global secondary indexes only eventually consistently), and every Query or Scan
follows ``LastEvaluatedKey`` past DynamoDB's 1 MB pages.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import BotoCoreError, ClientError

from chat import aws_clients
from chat.boto_config import bounded
from chat.cursor import lowest_id_at
from chat.errors import DependencyError
from chat.limits import Spent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PUBLIC_FEED = "public"
# What a write answers (botocore's response dict).
Answer = TypeVar("Answer")

# Bounded attempts keep a write's landing time well inside the cursor overlap window (chat.cursor).
_CLIENT_CONFIG = bounded(connect_s=1, read_s=3, attempts=3, pool=64)
# BatchGetItem takes at most 100 keys; a few rounds for the keys it leaves unprocessed (throttling).
_BATCH_GET_LIMIT = 100
_UNPROCESSED_ROUNDS = 4
_UNPROCESSED_BACKOFF_S = 0.025
# An unread count reads at most this many pages of ``cap`` items (see ChatStore.count_after).
_COUNT_PAGES = 10


def user_feed(username: str) -> str:
    """The partition holding a user's private messages, sent and received."""
    return f"user#{username}"


def dm_feed(sender: str, recipient: str) -> str:
    """The partition of the private messages ``sender`` sent ``recipient`` (one direction of their
    conversation): a conversation's history is two keyed Queries, and a user's unread count in it
    is one bounded count of the other direction, with no filter on the sender."""
    return f"dm#{sender}#{recipient}"


def inbox_partition(username: str) -> str:
    """The partition of a user's conversations: per partner the last message (``last#<partner>``),
    the user's read position (``read#<partner>``, ``read#@public`` for the public conversation)
    and the partner's (``seen#<partner>``). The inbox is one Query of it."""
    return f"inbox#{username}"


# Sort keys inside a user's inbox partition ('@' is never in a username).
_LAST, _READ, _SEEN = "last#", "read#", "seen#"
_PUBLIC_KEY = "@public"


def _typing_feed(username: str) -> str:
    """The partition of a user's typing throttles, one short-lived item per recipient."""
    return f"typing#{username}"


def _dedup_feed(username: str) -> str:
    return f"dedup#{username}"


def _rate_feed(username: str) -> str:
    """The partition of a user's rate-limit buckets, one item per route."""
    return f"rate#{username}"


@dataclass(frozen=True)
class ConnectionRecord:
    """One row of the Connections table: an open WebSocket connection and whose it is."""

    connection_id: str
    username: str


@dataclass(frozen=True)
class Presence:
    """A user's presence item: the open connections, and the pending offline of the presence grace
    (``left_at_ms``, ``left_by``: when and by which connection the last one closed)."""

    username: str
    connection_ids: frozenset[str]
    left_at_ms: int | None
    left_by: str | None


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
class InboxEntry:
    """What a user's inbox partition holds about one conversation (``partner`` None: public)."""

    partner: str | None
    last: StoredMessage | None = None
    read_up_to: str | None = None
    their_read_up_to: str | None = None


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
            self._client = cast("DynamoDBClient", aws_clients.client("dynamodb", config=_CLIENT_CONFIG))
        return self._client

    # ---- connections and presence --------------------------------------------------------------

    def add_connection(self, connection: ConnectionRecord, *, now: float, ttl_seconds: int) -> bool:
        """Record an open connection; True when the user came online with it.

        Not when another connection is open, nor when the user's last one closed within the
        presence grace and was never announced offline: the same atomic update that adds this
        connection cancels that pending offline (``REMOVE leftAt``), so a grace check landing after
        it finds the user online and says nothing.
        """
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
                UpdateExpression="ADD conns :conn SET expiresAt = :expires REMOVE leftAt, leftBy",
                ExpressionAttributeValues={
                    ":conn": {"SS": [connection.connection_id]},
                    ":expires": {"N": expires_at},
                },
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        lapsed = float(old.get("expiresAt", {}).get("N", "0")) < now
        previous = set(old.get("conns", {}).get("SS", [])) - {connection.connection_id}
        if previous and lapsed:
            # Every earlier connection outlived its TTL without a $disconnect: they are stale.
            self._forget_presence(connection.username, previous)
            previous = set()
        still_announced = "leftAt" in old and not lapsed
        return not previous and not still_announced

    def remove_connection(
        self, connection: ConnectionRecord, *, connected_before: float | None = None
    ) -> bool:
        """Forget a connection (idempotent); True when the user went offline with it (their
        presence item is gone, deleted by this call).

        With ``connected_before``, a connection recorded at or after that time is kept: API Gateway
        answers 410 for a socket still inside its own $connect, which is not a dead one.
        """
        old_conns = self._drop_connection(connection, connected_before)
        if old_conns is None or not old_conns or not old_conns <= {connection.connection_id}:
            return False
        return self._delete_presence_if_empty(connection.username)

    def leave(self, connection: ConnectionRecord, *, left_at_ms: int, hold_until: float) -> bool:
        """Forget a closed connection (idempotent); True when it was the user's last, which starts the
        presence grace: the item stays, marked ``leftAt`` (ms) and ``leftBy`` (this connection), so
        ``who`` still lists the user, until ``end_grace`` or a new connection clears the mark.
        ``hold_until`` bounds how long the mark lists the user if no grace check ever comes.
        """
        with _wrapped("remove the connection"):
            self.client.delete_item(
                TableName=self.connections_table, Key={"connectionId": {"S": connection.connection_id}}
            )
        if self._leave_last(connection, left_at_ms=left_at_ms, hold_until=hold_until):
            return True
        # Not the only connection (or a retry after the mark was set): just leave the set.
        self._forget_presence(connection.username, {connection.connection_id})
        return False

    def _leave_last(self, connection: ConnectionRecord, *, left_at_ms: int, hold_until: float) -> bool:
        """Take the user's only connection out of the set and mark the grace in ONE write: with two
        writes, a ``who`` between them would find neither a connection nor a mark and leave the user
        out during their grace."""
        return _condition_held(
            "update presence",
            lambda: self.client.update_item(
                TableName=self.presence_table,
                Key={"username": {"S": connection.username}},
                UpdateExpression="SET leftAt = :at, leftBy = :by, expiresAt = :hold DELETE conns :conns",
                # Only when this connection is the last one: a connection that opened in between
                # keeps the user online, and nothing is pending.
                ConditionExpression="contains(conns, :by) AND size(conns) = :one "
                "AND attribute_not_exists(leftAt)",
                ExpressionAttributeValues={
                    ":at": {"N": str(left_at_ms)},
                    ":by": {"S": connection.connection_id},
                    ":hold": {"N": str(int(hold_until))},
                    ":conns": {"SS": [connection.connection_id]},
                    ":one": {"N": "1"},
                },
            ),
        )

    def end_grace(self, username: str, *, left_by: str | None) -> bool:
        """Take the user offline if the grace that ``left_by``'s close started still holds: no
        connection has opened since. False when nothing changed (a reconnect won, or another check
        already ended it: repeats are harmless). ``left_by`` None ends an item that lost both its
        connections and its mark (a $disconnect that stopped half-way)."""
        condition = "attribute_not_exists(conns) AND " + (
            "attribute_not_exists(leftAt)" if left_by is None else "leftBy = :by"
        )
        return self._delete_presence_if(
            username, condition, {":by": {"S": left_by}} if left_by is not None else {}
        )

    def presence_of(self, username: str) -> Presence | None:
        """The user's presence item, read strongly consistently (a grace check decides from it)."""
        with _wrapped("read presence"):
            item = self.client.get_item(
                TableName=self.presence_table, Key={"username": {"S": username}}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return None
        return Presence(
            username=username,
            connection_ids=frozenset(item.get("conns", {}).get("SS", [])),
            left_at_ms=int(item["leftAt"]["N"]) if "leftAt" in item else None,
            left_by=item["leftBy"]["S"] if "leftBy" in item else None,
        )

    def _drop_connection(
        self, connection: ConnectionRecord, connected_before: float | None
    ) -> set[str] | None:
        """Delete the connection's row and take it out of the presence set; the set as it was before,
        or None when the row is too young to be removed (see ``remove_connection``)."""
        removed = _condition_held(
            "remove the connection",
            lambda: self.client.delete_item(
                TableName=self.connections_table,
                Key={"connectionId": {"S": connection.connection_id}},
                **_recorded_before(connected_before),
            ),
        )
        if not removed:
            return None  # too young to be dead
        return self._forget_presence(connection.username, {connection.connection_id})

    def _forget_presence(self, username: str, connection_ids: set[str]) -> set[str]:
        """Remove ids from the user's presence set; returns the set as it was before."""
        answer = _if_condition_holds(
            "update presence",
            lambda: self.client.update_item(
                TableName=self.presence_table,
                Key={"username": {"S": username}},
                UpdateExpression="DELETE conns :conns",
                ConditionExpression="attribute_exists(username)",
                ExpressionAttributeValues={":conns": {"SS": sorted(connection_ids)}},
                ReturnValues="UPDATED_OLD",
            ),
        )
        if answer is None:
            return set()  # no presence item: nothing to forget
        return set(answer.get("Attributes", {}).get("conns", {}).get("SS", []))

    def _delete_presence_if_empty(self, username: str) -> bool:
        """Delete an emptied presence item; False when a connection arrived in between (the user
        stays online, and nobody is told otherwise)."""
        return self._delete_presence_if(
            username, "attribute_exists(username) AND attribute_not_exists(conns)"
        )

    def _delete_presence_if(
        self, username: str, condition: str, values: dict[str, Any] | None = None
    ) -> bool:
        """Delete the user's presence item if ``condition`` holds; False (nothing deleted) if not."""
        return _condition_held(
            "update presence",
            lambda: self.client.delete_item(
                TableName=self.presence_table,
                Key={"username": {"S": username}},
                ConditionExpression=condition,
                **_values(values or {}),
            ),
        )

    def connections_of(self, *usernames: str) -> list[ConnectionRecord]:
        """Every open connection of these users, from their presence items (one BatchGetItem).

        Read strongly consistently: a connection recorded a moment ago is there. (A global secondary
        index on the connections table would be cheaper to keep but is only eventually consistent,
        so a device that had just connected could miss a private message until it reconnected.)
        """
        keys = [{"username": {"S": name}} for name in dict.fromkeys(usernames)]
        items: list[dict[str, Any]] = []
        with _wrapped("list the user's connections"):
            for start in range(0, len(keys), _BATCH_GET_LIMIT):
                items += self._get_all(self.presence_table, keys[start : start + _BATCH_GET_LIMIT])
        return [
            ConnectionRecord(connection_id, item["username"]["S"])
            for item in items
            for connection_id in sorted(item.get("conns", {}).get("SS", []))
        ]

    def _get_all(self, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """BatchGetItem, strongly consistent, asking again for any keys DynamoDB left unprocessed."""
        items: list[dict[str, Any]] = []
        request: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        for round_number in range(_UNPROCESSED_ROUNDS):
            if round_number:
                time.sleep(_UNPROCESSED_BACKOFF_S * 2**round_number)  # left over when throttled
            response = self.client.batch_get_item(RequestItems=request)
            items += response.get("Responses", {}).get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
        raise DependencyError("DynamoDB left keys unprocessed")

    def all_connections(self) -> Iterator[list[ConnectionRecord]]:
        """Every open connection, a Scan page at a time (pages stop at 1 MB; all of them are read).

        Strongly consistent, every page: a connection recorded just before a public send gets it.
        """
        with _wrapped("list the connections"):
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.connections_table,
                ProjectionExpression="connectionId, username",
                ConsistentRead=True,
            ):
                yield [_connection(item) for item in page.get("Items", [])]

    def online_users(self, *, now: float) -> list[str]:
        """Users with a connection that has not outlived its TTL, or inside their presence grace."""
        users: list[str] = []
        with _wrapped("list who is online"):
            paginator = self.client.get_paginator("scan")
            for page in paginator.paginate(
                TableName=self.presence_table,
                FilterExpression="expiresAt > :now AND (attribute_exists(conns) OR attribute_exists(leftAt))",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
                ProjectionExpression="username",
                ConsistentRead=True,  # a user who connected a moment ago is listed
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
                if aws_clients.error_code_of(exc) != "ConditionalCheckFailedException":
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
        if message.to is not None:
            writes += self._conversation_writes(message, message.to, expires_at)
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

    def _conversation_writes(self, message: StoredMessage, to: str, expires_at: int) -> list[Any]:
        """A private message's copies for its conversation: its direction's history item, and the
        last message of the conversation in both users' inboxes (so the inbox is one Query).

        Two sends of one conversation whose transactions land out of order leave the earlier one as
        ``last`` until the next message: the cost of not making a send fail on that condition."""
        table = self.messages_table
        sender = message.sender
        items = [
            _message_item(message, dm_feed(sender, to), expires_at),
            {**_message_item(message, inbox_partition(sender), expires_at), "id": {"S": _LAST + to}},
            {**_message_item(message, inbox_partition(to), expires_at), "id": {"S": _LAST + sender}},
        ]
        for item in items[1:]:
            item["messageId"] = {"S": message.id}
        return [{"Put": {"TableName": table, "Item": item}} for item in items]

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
        """One feed's messages from ``floor_ms`` on, oldest first: all up to ``after``, then up to
        ``limit`` newer; and whether a newer one is left beyond them.

        Each page asks for no more items than can still be needed (the newer ones missing, plus one
        to tell whether there are more), so a sync of 500 reads about 501 items, not two pages of
        500; a page still stops at 1 MB, and ``LastEvaluatedKey`` is followed until the count is met.
        """
        messages: list[StoredMessage] = []
        newer = 0
        query: dict[str, Any] = {
            "TableName": self.messages_table,
            "KeyConditionExpression": "feed = :s AND id >= :floor",
            "ExpressionAttributeValues": {":s": {"S": feed}, ":floor": {"S": lowest_id_at(floor_ms)}},
            "ConsistentRead": True,
        }
        with _wrapped("read the history"):
            while True:
                page = self.client.query(**query, Limit=limit + 1 - newer)
                for item in _unexpired(page.get("Items", []), now):
                    message = _stored_message(item)
                    newer += message.id > after
                    if newer > limit:
                        return messages, True
                    messages.append(message)
                if "LastEvaluatedKey" not in page:
                    return messages, False
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def older(self, feeds: list[str], *, before: str | None, limit: int, now: float) -> Page:
        """Up to ``limit`` messages across ``feeds`` stored before ``before`` (the newest ones when it
        is None), newest first; ``more`` when older ones exist. One keyed Query per feed, each
        following its 1 MB pages until it has ``limit`` + 1 messages or none are left."""
        newest_first: list[StoredMessage] = []
        for feed in feeds:
            newest_first += self._newest(feed, limit=limit + 1, now=now, before=before)
        newest_first.sort(key=lambda m: m.id, reverse=True)
        return Page(messages=newest_first[:limit], more=len(newest_first) > limit)

    def latest(self, feeds: list[str], *, limit: int, now: float) -> list[StoredMessage]:
        """The latest ``limit`` messages across ``feeds``, oldest first."""
        newest_first: list[StoredMessage] = []
        for feed in feeds:
            newest_first += self._newest(feed, limit=limit, now=now)
        newest_first.sort(key=lambda m: m.id, reverse=True)
        return list(reversed(newest_first[:limit]))

    def _newest(self, feed: str, *, limit: int, now: float, before: str | None = None) -> list[StoredMessage]:
        """Up to ``limit`` of one feed's newest messages (stored before ``before``), newest first.

        A Query page stops at 1 MB whatever its ``Limit`` (about 330 messages of 3,000 characters),
        and ``Limit`` counts expired items too: so pages are followed until ``limit`` messages are
        in hand or the feed has no more.
        """
        messages: list[StoredMessage] = []
        with _wrapped("read the history"):
            paginator = self.client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self.messages_table,
                KeyConditionExpression="feed = :s" + (" AND id < :before" if before else ""),
                ExpressionAttributeValues={
                    ":s": {"S": feed},
                    **({":before": {"S": before}} if before else {}),
                },
                ScanIndexForward=False,
                ConsistentRead=True,
                PaginationConfig={"PageSize": limit},
            )
            for page in pages:
                for item in _unexpired(page.get("Items", []), now):
                    messages.append(_stored_message(item))
                    if len(messages) == limit:
                        return messages
        return messages

    # ---- conversations -------------------------------------------------------------------------

    def inbox(self, username: str, *, now: float) -> list[InboxEntry]:
        """Every conversation the user's inbox partition knows, from one Query (all its 1 MB pages),
        strongly consistent: a message or read position written a moment ago is there."""
        entries: dict[str | None, dict[str, Any]] = {}
        with _wrapped("read the inbox"):
            paginator = self.client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.messages_table,
                KeyConditionExpression="feed = :p",
                FilterExpression="expiresAt > :now",
                ExpressionAttributeValues={
                    ":p": {"S": inbox_partition(username)},
                    ":now": {"N": str(int(now))},
                },
                ConsistentRead=True,
            ):
                for item in page.get("Items", []):
                    kind, _, name = item["id"]["S"].partition("#")
                    partner = None if name == _PUBLIC_KEY else name
                    entry = entries.setdefault(partner, {"partner": partner})
                    if kind == "last":
                        entry["last"] = _stored_message({**item, "id": item["messageId"]})
                    elif kind == "read":
                        entry["read_up_to"] = item["upTo"]["S"]
                    elif kind == "seen":
                        entry["their_read_up_to"] = item["upTo"]["S"]
        return [InboxEntry(**fields) for fields in entries.values()]

    def count_after(
        self, feed: str, *, after: str | None, cap: int, now: float, not_from: str | None = None
    ) -> int:
        """How many messages of ``feed`` are stored after ``after`` (all when None), counting to
        ``cap`` and stopping there; with ``not_from``, that user's own are not counted.

        A COUNT Query reads at most ``cap`` items a page. Without ``not_from`` a page of ``cap``
        live items ends it; a page's expired items (TTL deletes lazily) or, with ``not_from``, the
        user's own make it go on, at most ``_COUNT_PAGES`` pages: bounded work either way.
        """
        condition = "feed = :f" + (" AND id > :after" if after else "")
        values: dict[str, Any] = {":f": {"S": feed}, ":now": {"N": str(int(now))}}
        if after:
            values[":after"] = {"S": after}
        filters = "expiresAt > :now"
        names: dict[str, str] = {}
        if not_from is not None:
            filters += " AND #from <> :me"
            values[":me"] = {"S": not_from}
            names["#from"] = "from"
        request: dict[str, Any] = {
            "TableName": self.messages_table,
            "KeyConditionExpression": condition,
            "FilterExpression": filters,
            "ExpressionAttributeValues": values,
            "Select": "COUNT",
            "Limit": cap,
            "ConsistentRead": True,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        count = 0
        with _wrapped("count unread messages"):
            for _ in range(_COUNT_PAGES):
                answer = self.client.query(**request)
                count += answer.get("Count", 0)
                start = answer.get("LastEvaluatedKey")
                if count >= cap or not start:
                    break
                request["ExclusiveStartKey"] = start
        return min(count, cap)

    def advance_read(self, reader: str, partner: str | None, up_to: str, *, expires_at: int) -> bool:
        """Move the reader's position in a conversation forward to ``up_to``; False (and nothing
        written) when it is already there or further: positions never move backwards.

        One conditional write: for a private conversation, a transaction that also records the
        position as the partner's ``seen#<reader>`` (written only together, so always equal), which
        lets the partner's inbox read it in its one Query.
        """
        own = self._position_put(inbox_partition(reader), _READ + (partner or _PUBLIC_KEY), up_to, expires_at)
        own["ConditionExpression"] = "attribute_not_exists(upTo) OR upTo < :upTo"
        own["ExpressionAttributeValues"] = {":upTo": {"S": up_to}}
        try:
            if partner is None:
                self.client.put_item(**own)
            else:
                theirs = self._position_put(inbox_partition(partner), _SEEN + reader, up_to, expires_at)
                writes: list[Any] = [{"Put": own}, {"Put": theirs}]
                self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if aws_clients.error_code_of(exc) == "ConditionalCheckFailedException" or _first_condition_failed(
                exc
            ):
                return False
            raise DependencyError("could not record the read position") from exc
        except BotoCoreError as exc:
            raise DependencyError("could not record the read position") from exc
        return True

    def _position_put(self, partition: str, key: str, up_to: str, expires_at: int) -> dict[str, Any]:
        return {
            "TableName": self.messages_table,
            "Item": {
                "feed": {"S": partition},
                "id": {"S": key},
                "upTo": {"S": up_to},
                "expiresAt": {"N": str(expires_at)},
            },
        }

    def claim_typing(self, sender: str, recipient: str, *, now_ms: int, window_ms: int) -> bool:
        """True when no ``typing`` from ``sender`` to ``recipient`` was forwarded within the last
        ``window_ms``, recording this one (one conditional PutItem; the item expires soon after)."""
        return _condition_held(
            "record the typing notice",
            lambda: self.client.put_item(
                TableName=self.messages_table,
                Item={
                    "feed": {"S": _typing_feed(sender)},
                    "id": {"S": recipient},
                    "at": {"N": str(now_ms)},
                    "expiresAt": {"N": str((now_ms + window_ms) // 1000 + 60)},
                },
                ConditionExpression="attribute_not_exists(#at) OR #at <= :since",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":since": {"N": str(now_ms - window_ms)}},
            ),
        )


def _recorded_before(cutoff: float | None) -> dict[str, Any]:
    """A DeleteItem condition: the item is gone already or was recorded before ``cutoff``."""
    if cutoff is None:
        return {}
    return {
        "ConditionExpression": "attribute_not_exists(connectionId) OR connectedAt < :cutoff",
        "ExpressionAttributeValues": {":cutoff": {"N": str(int(cutoff))}},
    }


def _values(values: dict[str, Any]) -> dict[str, Any]:
    """ExpressionAttributeValues only when there are some (DynamoDB refuses an empty map)."""
    return {"ExpressionAttributeValues": values} if values else {}


# ---- item mapping ------------------------------------------------------------------------------


def _connection(item: dict[str, Any]) -> ConnectionRecord:
    return ConnectionRecord(connection_id=item["connectionId"]["S"], username=item["username"]["S"])


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


def _unexpired(items: list[dict[str, Any]], now: float) -> Iterator[dict[str, Any]]:
    """The message items not past their expiry: TTL deletes lazily, and an item past its expiry is
    already gone as far as clients know. Checked here rather than in a FilterExpression: DynamoDB
    charges a Query for every item it reads, filtered or not, so this costs the same read units,
    and it spares an expression evaluated item by item (which dominates a large read on moto)."""
    cutoff = int(now)
    return (item for item in items if int(item["expiresAt"]["N"]) > cutoff)


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


def _first_condition_failed(exc: ClientError) -> bool:
    """A cancelled transaction whose first write (the dedup record) failed its condition."""
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"


def _if_condition_holds(doing: str, write: Callable[[], Answer]) -> Answer | None:
    """Make one conditional write: its answer, or None when its condition failed (the state it
    guards against was found, which the caller decides about); any other failure is a
    DependencyError naming what was being done."""
    return aws_clients.unless_error("ConditionalCheckFailedException", doing, write)


def _condition_held(doing: str, write: Callable[[], object]) -> bool:
    """Make one conditional write; True when it was made, False when its condition failed."""
    return _if_condition_holds(doing, write) is not None


@contextmanager
def _wrapped(doing: str) -> Iterator[None]:
    """Turn SDK failures into DependencyError naming what was being done."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise DependencyError(f"could not {doing}") from exc
