"""Large fan-outs are split into chunks posted by worker invocations, and nothing is lost on the way.

The workers run as Lambda runs asynchronous invocations (``tests/support/lambda_double.py``): at
least once, a failed event twice more, then its record on the on-failure queue (moto's SQS).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chat import wiring
from chat.handlers import fanout

from clients.cli.protocol import ChatState
from tests.support.lambda_double import LambdaInvokeDouble, SqsDestination
from tests.support.world import ChatWorld, lambda_context

Workers = Callable[..., LambdaInvokeDouble]


@pytest.fixture
def failure_queue(moto_url: str) -> SqsDestination:
    """The worker's on-failure destination: a standard SQS queue in moto's server."""
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    url = sqs.create_queue(QueueName=f"fanout-failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return SqsDestination(sqs, url)


@pytest.fixture
def start_workers(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch, failure_queue: SqsDestination
) -> Iterator[Workers]:
    """Point the route functions at a fan-out worker (chunks of four) run by Lambda's async rules."""
    started: list[LambdaInvokeDouble] = []

    def start(handler: Any = fanout.handler, **options: Any) -> LambdaInvokeDouble:
        double = LambdaInvokeDouble(handler, lambda_context(), on_failure=failure_queue, **options)
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", double.endpoint)
        monkeypatch.setenv("FANOUT_FUNCTION_NAME", "chat-fanout-worker")
        monkeypatch.setenv("FANOUT_CHUNK_SIZE", "4")
        wiring.reset()
        started.append(double)
        return double

    yield start
    for double in started:
        double.stop()


@pytest.fixture
def workers(start_workers: Workers) -> LambdaInvokeDouble:
    return start_workers()


def test_a_large_audience_is_handed_to_worker_invocations(
    world: ChatWorld, workers: LambdaInvokeDouble
) -> None:
    """Fourteen connections in chunks of four: four worker invocations post them all."""
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(13)]
    world.say(sender, "alice", "to the crowd")
    workers.wait()
    jobs = [job for job in workers.invocations if '"type":"message"' in job["frame"]]
    assert [len(job["connections"]) for job in jobs] == [4, 4, 4, 2]
    for connection_id in [sender, *audience]:
        assert [f["text"] for f in world.frames(connection_id, "message")] == ["to the crowd"], connection_id


def test_workers_prune_gone_connections(world: ChatWorld, workers: LambdaInvokeDouble) -> None:
    """A 410 met by a worker deletes that connection like one met by the route function."""
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(9)]
    world.management.gone.update(audience)
    world.later(seconds=60)
    world.say(sender, "alice", "hello?")
    workers.wait()
    remaining = world.dynamodb.scan(TableName=world.tables["Connections"])["Items"]
    assert [item["connectionId"]["S"] for item in remaining] == [sender]


def test_when_workers_cannot_be_invoked_the_route_delivers_itself(
    world: ChatWorld, workers: LambdaInvokeDouble
) -> None:
    """If Lambda refuses the worker invocation, the sending function posts those chunks itself."""
    workers.refuse = True
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(9)]
    world.say(sender, "alice", "still arrives")
    for connection_id in audience:
        assert [f["text"] for f in world.frames(connection_id, "message")] == ["still arrives"]
    assert workers.invocations == []


def test_the_ack_does_not_wait_for_the_workers(world: ChatWorld, workers: LambdaInvokeDouble) -> None:
    """With the workers held back, the sender already has its ack: the long fan-out is off its path."""
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(7)]
    workers.wait()
    workers.hold.clear()
    world.say(sender, "alice", "go")
    assert [a["duplicate"] for a in world.frames(sender, "ack")] == [False]
    assert all(world.frames(c, "message") == [] for c in audience)
    workers.hold.set()
    workers.wait()
    assert all(len(world.frames(c, "message")) == 1 for c in audience)


# ---- at least once -----------------------------------------------------------------------------


def _message_ids(world: ChatWorld, connection_id: str) -> list[str]:
    return [f["id"] for f in world.frames(connection_id, "message")]


def _stored_public_messages(world: ChatWorld) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = world.dynamodb.query(
        TableName=world.tables["Messages"],
        KeyConditionExpression="feed = :f",
        ExpressionAttributeValues={":f": {"S": "public"}},
        ConsistentRead=True,
    )["Items"]
    return items


def test_every_worker_event_delivered_twice_repeats_only_the_same_frame(
    world: ChatWorld, start_workers: Workers
) -> None:
    """Lambda hands each worker event over twice: nothing is stored twice, each recipient gets the
    one message id at most twice, and a client showing the frames shows the message once."""
    workers = start_workers(deliveries=2)
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(9)]
    world.say(sender, "alice", "once, really")
    workers.wait()
    [stored] = _stored_public_messages(world)
    for connection_id in [sender, *audience]:
        ids = _message_ids(world, connection_id)
        assert set(ids) == {stored["id"]["S"]} and len(ids) <= 2, connection_id
    assert workers.attempts == 2 * len(workers.invocations) and workers.failed == []
    view = ChatState("user0")
    shown = [event for frame in world.frames(audience[0]) for event in view.receive(frame).events]
    assert [event["text"] for event in shown if event.get("type") == "message"] == ["once, really"]


def test_the_same_worker_event_run_again_by_hand_posts_the_same_frame(
    world: ChatWorld, workers: LambdaInvokeDouble
) -> None:
    """Replaying a recorded worker event (a redelivery) posts the same frame to its chunk again,
    stores nothing and does not fail."""
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(5)]
    world.say(sender, "alice", "hello")
    workers.wait()
    job = next(job for job in workers.invocations if '"type":"message"' in job["frame"])
    [message_id] = {i for c in audience for i in _message_ids(world, c)}
    answer = fanout.handler(json.loads(json.dumps(job)), lambda_context())
    assert answer == {"connections": len(job["connections"])}
    assert len(_stored_public_messages(world)) == 1
    chunk = {connection_id for connection_id, _ in job["connections"]}
    for connection_id in [sender, *audience]:
        expected = 2 if connection_id in chunk else 1
        assert _message_ids(world, connection_id) == [message_id] * expected, connection_id


def test_a_pruning_failure_does_not_fail_the_chunk(
    world: ChatWorld, workers: LambdaInvokeDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 410 whose DeleteItem fails: the worker still succeeds, so Lambda does not post the chunk again."""
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(7)]
    world.management.gone.add(audience[0])
    world.later(seconds=60)

    def refuse_delete(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "DeleteItem")

    world.service.store.client.meta.events.register("before-call.dynamodb.DeleteItem", refuse_delete)
    world.say(sender, "alice", "still one copy")
    workers.wait()
    assert workers.failed == []
    assert workers.attempts == len(workers.invocations)
    for connection_id in [sender, *audience[1:]]:
        assert len(_message_ids(world, connection_id)) == 1, connection_id


def test_a_worker_event_that_always_fails_is_tried_three_times_then_queued(
    world: ChatWorld, workers: LambdaInvokeDouble, failure_queue: SqsDestination
) -> None:
    """An event the worker cannot read fails every attempt: 1 + 2 retries, then Lambda's record of it
    (the event, the error) is on the on-failure queue and nothing was posted."""
    poison = {"endpoint": world.management.endpoint, "frame": "{}", "connections": "not a list"}
    workers.accept(poison)
    workers.wait()
    assert workers.attempts == 3
    [record] = failure_queue.records()
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == poison
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert "not a fan-out job" in record["responsePayload"]["errorMessage"]
    assert world.management.log == []


def test_a_worker_that_dies_after_posting_repeats_the_frame_at_most_three_times(
    world: ChatWorld, start_workers: Workers, failure_queue: SqsDestination
) -> None:
    """A worker that posts and then dies (say, at its timeout) is retried twice and no more: each
    recipient holds one message id, at most three times, and the chunk's record is queued."""

    def posts_then_dies(event: dict[str, Any], context: Any) -> Any:
        fanout.handler(event, context)
        raise TimeoutError("Task timed out after 120.00 seconds")

    workers = start_workers(posts_then_dies)
    sender = world.connect("alice")
    audience = [world.connect(f"user{n}") for n in range(5)]
    world.say(sender, "alice", "hello")
    workers.wait()
    chunks = len(workers.invocations)
    assert workers.attempts == 3 * chunks
    records = failure_queue.records()
    assert len(records) == chunks
    assert {r["responsePayload"]["errorType"] for r in records} == {"TimeoutError"}
    for connection_id in [sender, *audience]:
        ids = _message_ids(world, connection_id)
        assert len(set(ids)) == 1 and 1 <= len(ids) <= 3, connection_id
