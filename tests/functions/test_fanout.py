"""Large fan-outs are split into chunks posted by worker invocations, and nothing is lost on the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat import wiring
from chat.handlers import fanout

from tests.support.lambda_double import LambdaInvokeDouble
from tests.support.world import ChatWorld, lambda_context


@pytest.fixture
def workers(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaInvokeDouble]:
    double = LambdaInvokeDouble(fanout.handler, lambda_context())
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", double.endpoint)
    monkeypatch.setenv("FANOUT_FUNCTION_NAME", "chat-fanout-worker")
    monkeypatch.setenv("FANOUT_CHUNK_SIZE", "4")
    wiring.reset()
    yield double
    double.stop()


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
