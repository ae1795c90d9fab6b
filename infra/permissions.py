"""What each function may do, in one place: least privilege, action by action.

Each table grant names its actions explicitly and applies to the table itself; a Query on an index
is granted on that index only. The actions follow what the runtime calls (``functions/chat/store.py``,
``functions/chat/directory.py``): when it starts calling something new, add it here.

Every route function also gets ``execute-api:ManageConnections`` on this API's ``@connections``
(see ``ChatStack._grant_least_privilege``).
The functions that tell everyone something (Connect, Disconnect, SendMessage) may also invoke the
fan-out worker (``INVOKES_FANOUT_WORKER``), which gets the same frame-posting rights, and the right
to send to its on-failure queue (granted by ``aws_lambda_destinations.SqsDestination`` in
``infra/functions.py``).
The functions that queue delayed presence checks (``SENDS_PRESENCE_CHECKS``) may send to that
queue; the presence-check worker also consumes it (its SQS trigger's own grant).
Every message route spends its caller's budget (``chat.limits``): an UpdateItem on the Messages
table, limited to the ``rate#<user>`` items by a ``dynamodb:LeadingKeys`` condition where the
function may not otherwise update that table (``budget_items``).
The conversation routes write only their own kind of item, by a ``dynamodb:LeadingKeys``
condition too: Read puts read positions (``inbox#<user>`` items), Typing its throttle items
(``typing#<user>``) (``keyed_writes``). History and Inbox only Query.
The authorizer and the sign-up trigger get nothing beyond writing their logs and traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from infra import schema

CONNECTIONS = schema.CONNECTIONS.logical_id
PRESENCE = schema.PRESENCE.logical_id
MESSAGES = schema.MESSAGES.logical_id


@dataclass(frozen=True)
class FunctionGrants:
    """The DynamoDB actions one function needs, per table and per index."""

    tables: dict[str, tuple[str, ...]]
    # Table and index ids to actions; no function reads an index today (see infra/schema.py).
    indexes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    user_pool: tuple[str, ...] = ()
    # UpdateItem on the Messages table's rate-limit buckets (partition keys ``rate#...``) only.
    budget_items: bool = False
    # Actions on the Messages table allowed only on items whose partition key matches a pattern.
    keyed_writes: tuple[KeyedWrite, ...] = ()


@dataclass(frozen=True)
class KeyedWrite:
    """``actions`` on the Messages table, only where the partition key is like ``leading_key``."""

    actions: tuple[str, ...]
    leading_key: str


# The partition keys of the per-user budget buckets (chat.store: ``rate#<username>``).
BUDGET_KEYS = "rate#*"
# Read positions live in the users' inbox partitions, typing throttles in their own (chat.store).
INBOX_KEYS = "inbox#*"
TYPING_KEYS = "typing#*"


# Any function that posts a frame may learn from API Gateway (410 Gone) that a connection is dead.
# It then deletes the connection, takes it out of its user's presence item (deleting the item when
# it empties) and tells everyone (a Scan of connections) if that user went offline. The runtime does
# this from every route (chat.service.ChatService._prune), so every route function needs it.
_PRUNE_STALE = {
    CONNECTIONS: ("dynamodb:DeleteItem", "dynamodb:Scan"),
    PRESENCE: ("dynamodb:UpdateItem", "dynamodb:DeleteItem"),
}

GRANTS: dict[str, FunctionGrants] = {
    # Records the connection and its user's presence; tells everyone when the user comes online.
    "Connect": FunctionGrants(
        tables={**_PRUNE_STALE, CONNECTIONS: ("dynamodb:PutItem", *_PRUNE_STALE[CONNECTIONS])},
        indexes={},
    ),
    # Forgets the connection; tells everyone when it was the user's last.
    "Disconnect": FunctionGrants(tables=_PRUNE_STALE, indexes={}),
    # Spends the sender's budget (UpdateItem, which also marks deliveries), stores the message
    # (TransactWriteItems of Puts, one of them conditional: PutItem), reads the original on a
    # duplicate (GetItem), checks that a private message's recipient has an account, then fans
    # out: to everyone (Scan) or to two users' connections (BatchGetItem of their presence items).
    "SendMessage": FunctionGrants(
        tables={
            **_PRUNE_STALE,
            PRESENCE: ("dynamodb:BatchGetItem", *_PRUNE_STALE[PRESENCE]),
            MESSAGES: ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem"),
        },
        user_pool=("cognito-idp:AdminGetUser",),
    ),
    # Replays history: Query per feed (public, and the user's private feed).
    "Sync": FunctionGrants(
        tables={**_PRUNE_STALE, MESSAGES: ("dynamodb:Query",)}, indexes={}, budget_items=True
    ),
    # Lists who is online: a Scan of presence.
    "Who": FunctionGrants(
        tables={**_PRUNE_STALE, PRESENCE: ("dynamodb:Scan", *_PRUNE_STALE[PRESENCE])},
        indexes={},
        budget_items=True,
    ),
    "Ping": FunctionGrants(tables=_PRUNE_STALE, indexes={}, budget_items=True),
    # Pages back through one conversation: Query of the public feed or a conversation's two
    # directions.
    "History": FunctionGrants(tables={**_PRUNE_STALE, MESSAGES: ("dynamodb:Query",)}, budget_items=True),
    # Records a read position: a conditional PutItem, or for a private conversation a
    # TransactWriteItems of two Puts (each allowed as PutItem), only in inbox partitions; checks the
    # partner has an account; tells the reader's other connections and the partner's (BatchGetItem).
    "Read": FunctionGrants(
        tables={**_PRUNE_STALE, PRESENCE: ("dynamodb:BatchGetItem", *_PRUNE_STALE[PRESENCE])},
        user_pool=("cognito-idp:AdminGetUser",),
        budget_items=True,
        keyed_writes=(KeyedWrite(("dynamodb:PutItem",), INBOX_KEYS),),
    ),
    # Forwards a typing notice: a conditional PutItem of its throttle item, the recipient's account
    # checked, their connections read (BatchGetItem).
    "Typing": FunctionGrants(
        tables={**_PRUNE_STALE, PRESENCE: ("dynamodb:BatchGetItem", *_PRUNE_STALE[PRESENCE])},
        user_pool=("cognito-idp:AdminGetUser",),
        budget_items=True,
        keyed_writes=(KeyedWrite(("dynamodb:PutItem",), TYPING_KEYS),),
    ),
    # Lists the caller's conversations: Query of their inbox partition, the public feed's newest
    # message, and COUNT Queries for unread messages.
    "Inbox": FunctionGrants(tables={**_PRUNE_STALE, MESSAGES: ("dynamodb:Query",)}, budget_items=True),
    # Posts one frame to a chunk of connections handed over by Connect, Disconnect or SendMessage.
    "FanoutWorker": FunctionGrants(tables=_PRUNE_STALE, indexes={}),
    "Default": FunctionGrants(tables=_PRUNE_STALE, indexes={}, budget_items=True),
    # Runs the presence grace's delayed checks: reads the user's presence item (GetItem), ends the
    # grace with a conditional DeleteItem, prunes a connection API Gateway says is gone (GET
    # @connections) and tells everyone (Scan) when the user went offline.
    "PresenceCheck": FunctionGrants(
        tables={**_PRUNE_STALE, PRESENCE: ("dynamodb:GetItem", *_PRUNE_STALE[PRESENCE])},
        indexes={},
    ),
}


# Functions that broadcast to every connection, and so may hand chunks to the worker.
INVOKES_FANOUT_WORKER = ("Connect", "Disconnect", "SendMessage", "PresenceCheck")
# Functions that queue a delayed presence check (sqs:SendMessage on the presence queue only): the
# last $disconnect of a user, and a check that arrived early and looks again later.
SENDS_PRESENCE_CHECKS = ("Disconnect", "PresenceCheck")


def grant(
    grantee: iam.IGrantable,
    grants: FunctionGrants,
    *,
    tables: dict[str, dynamodb.Table],
    user_pool_arn: str,
) -> None:
    """Give ``grantee`` exactly what ``grants`` lists, on these tables and this user pool."""
    for table_id, actions in grants.tables.items():
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(actions), resource_arns=[tables[table_id].table_arn]
        )
    for (table_id, index_name), actions in grants.indexes.items():
        index_arn = f"{tables[table_id].table_arn}/index/{index_name}"
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[index_arn])
    if grants.budget_items:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[tables[MESSAGES].table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [BUDGET_KEYS]}},
            )
        )
    for keyed in grants.keyed_writes:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(keyed.actions),
                resources=[tables[MESSAGES].table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keyed.leading_key]}},
            )
        )
    if grants.user_pool:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(grants.user_pool), resource_arns=[user_pool_arn]
        )
