"""A chat backend assembled for handler tests: moto's server (over HTTP) for DynamoDB and Cognito,
the management-API double for frames, and the real Lambda handlers driven with API Gateway-shaped
events from tests/events/."""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from chat import config, wiring
from chat.handlers import connect, default, disconnect, ping, presence, sendmessage, sync, who
from chat.service import ChatService

from infra import schema
from local_stack.events import select_route
from local_stack.lambdas import LambdaContext
from local_stack.queues import Queues, create_queues, sqs_event
from tests.support.management_double import ManagementApiDouble

EVENTS = Path(__file__).parent.parent / "events"
ROUTE_HANDLERS = {
    "sendmessage": sendmessage.handler,
    "sync": sync.handler,
    "who": who.handler,
    "ping": ping.handler,
    "$default": default.handler,
}
_connection_numbers = itertools.count(1)
_frame_numbers = itertools.count(1)


def lambda_context(function_name: str = "chat-test") -> LambdaContext:
    """Lambda's context object as the local stack builds it (Powertools reads its attributes)."""
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + 29,
    )


def event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


class ChatWorld:
    def __init__(
        self, moto_url: str, management: ManagementApiDouble, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.management = management
        suffix = uuid.uuid4().hex[:8]
        self.dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
        self.cognito = boto3.client("cognito-idp", endpoint_url=moto_url)
        names = {}
        for spec in schema.TABLES:
            names[spec.logical_id] = f"{spec.logical_id}-{suffix}"
            self.dynamodb.create_table(**schema.create_table_request(spec, names[spec.logical_id]))
        self.user_pool_id = self.cognito.create_user_pool(
            PoolName=f"chat-{suffix}", UsernameConfiguration={"CaseSensitive": False}
        )["UserPool"]["Id"]
        env = {
            config.CONNECTIONS_TABLE: names["Connections"],
            config.PRESENCE_TABLE: names["Presence"],
            config.MESSAGES_TABLE: names["Messages"],
            config.USER_POOL_ID: self.user_pool_id,
            config.MANAGEMENT_ENDPOINT: management.endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": moto_url,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.tables = names
        self.moto_url = moto_url
        self._monkeypatch = monkeypatch
        self.presence_queues: Queues | None = None
        wiring.reset()

    def with_presence_grace(self, seconds: int) -> ChatWorld:
        """Turn the presence grace on: a queue in moto's SQS for the delayed checks (moto holds each
        message back for its DelaySeconds, in real time); ``run_presence_checks`` is its trigger."""
        self.sqs = boto3.client("sqs", endpoint_url=self.moto_url)
        self.presence_queues = create_queues(self.sqs, name=f"presence-{uuid.uuid4().hex[:8]}")
        for name, value in {
            config.PRESENCE_QUEUE_URL: self.presence_queues.url,
            config.PRESENCE_GRACE_SECONDS: str(seconds),
            "AWS_ENDPOINT_URL_SQS": self.moto_url,
        }.items():
            self._monkeypatch.setenv(name, value)
        wiring.reset()
        return self

    def run_presence_checks(self) -> int:
        """Deliver every presence check that is due to the real worker, as the queue's event source
        mapping would (failed records stay queued); how many were delivered."""
        assert self.presence_queues is not None, "with_presence_grace() first"
        delivered = 0
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.presence_queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return delivered
            raw = sqs_event(messages, queue_arn=self.presence_queues.arn, region="us-east-1")
            answer = self.invoke(presence.handler, raw)
            failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(
                        QueueUrl=self.presence_queues.url, ReceiptHandle=message["ReceiptHandle"]
                    )
            delivered += len(messages)
            if failed:
                return delivered

    @property
    def service(self) -> ChatService:
        return wiring.service_for(self.management.endpoint)

    def later(self, *, seconds: float) -> None:
        """Move the service's clock forward (connections, ids and TTLs see the new time)."""
        clock = self.service.clock
        self.service.clock = lambda: clock() + seconds

    def add_user(self, username: str) -> None:
        self.cognito.admin_create_user(UserPoolId=self.user_pool_id, Username=username)

    # ---- driving the handlers like API Gateway does ------------------------------------------

    def connect(self, username: str, connection_id: str | None = None) -> str:
        connection_id = connection_id or f"conn{next(_connection_numbers):06d}="
        response = connect.handler(self._event("connect", username, connection_id), lambda_context())
        assert response["statusCode"] == 200, response
        return connection_id

    def disconnect(self, connection_id: str, username: str) -> dict[str, Any]:
        return disconnect.handler(self._event("disconnect", username, connection_id), lambda_context())

    def send(self, connection_id: str, username: str, body: dict[str, Any] | str) -> dict[str, Any]:
        """A frame from a client: routed on ``action`` like API Gateway, anything else to $default."""
        raw = body if isinstance(body, str) else json.dumps(body)
        route_key = select_route(raw, ROUTE_HANDLERS)
        message = self._event("message", username, connection_id)
        message["requestContext"]["routeKey"] = route_key
        message["body"] = raw
        message["requestContext"]["messageId"] = f"msg{next(_frame_numbers):09d}="
        return self.invoke(ROUTE_HANDLERS[route_key], message)

    def invoke(self, handler: Any, raw_event: dict[str, Any]) -> dict[str, Any]:
        """Call a handler the way Lambda does (a test may repeat an event to mimic a redelivery)."""
        return handler(raw_event, lambda_context())

    def say(self, connection_id: str, username: str, text: str, **fields: Any) -> dict[str, Any]:
        return self.send(connection_id, username, {"action": "sendmessage", "text": text, **fields})

    def frames(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        return self.management.received(connection_id, frame_type)

    def _event(self, name: str, username: str, connection_id: str) -> dict[str, Any]:
        raw = event(name)
        raw["requestContext"]["connectionId"] = connection_id
        raw["requestContext"]["authorizer"] = {"principalId": username, "username": username}
        return raw
