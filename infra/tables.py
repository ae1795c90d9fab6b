"""The DynamoDB tables, built from the plain description in ``infra/schema.py``."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra import schema

_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
}


class ChatTables(Construct):
    """The connections, presence and messages tables: on-demand, TTL on, point-in-time recovery on.

    ``retain_data`` decides what happens to the message history when the stack is deleted.
    Connections and presence describe sockets that die with the API, so they are always deleted.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        history_policy = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.connections = _table(self, schema.CONNECTIONS, RemovalPolicy.DESTROY)
        self.presence = _table(self, schema.PRESENCE, RemovalPolicy.DESTROY)
        self.messages = _table(self, schema.MESSAGES, history_policy)

    def by_logical_id(self) -> dict[str, dynamodb.Table]:
        """Each table under its ``schema.TableSpec.logical_id``."""
        return {
            schema.CONNECTIONS.logical_id: self.connections,
            schema.PRESENCE.logical_id: self.presence,
            schema.MESSAGES.logical_id: self.messages,
        }


def _table(scope: Construct, spec: schema.TableSpec, removal_policy: RemovalPolicy) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        spec.logical_id,
        partition_key=_string(spec.partition_key),
        sort_key=_string(spec.sort_key) if spec.sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=spec.ttl_attribute,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=removal_policy,
    )
    for index in spec.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_string(index.partition_key),
            sort_key=_string(index.sort_key) if index.sort_key else None,
            projection_type=_PROJECTIONS[index.projection],
        )
    return table


def _string(name: str) -> dynamodb.Attribute:
    # Every key in this model is a string (ids, usernames, feed names).
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
