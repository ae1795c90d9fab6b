"""Faults injected between the real handlers and DynamoDB or the management API, each survived:
the system recovers by itself, and every acknowledged message reaches every session that should
have it, live or by ``sync``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chat.handlers import sendmessage
from chat.notifier import Notifier, RetryPolicy
from chat.service import ChatService

from tests.reliability.faults import (
    DynamoDbThrottle,
    HungConnection,
    received_texts,
    stored_messages,
    stored_texts,
    sync_all,
)
from tests.support.world import ChatWorld, event, lambda_context


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextlib.contextmanager
def clock_moved(world: ChatWorld, seconds: float) -> Iterator[None]:
    """The service's clock ``seconds`` away from now for the duration of the block."""
    world.service.clock = lambda: time.time() + seconds
    try:
        yield
    finally:
        world.service.clock = time.time


def presence_of(world: ChatWorld, connection_id: str, user: str) -> list[bool]:
    return [f["online"] for f in world.frames(connection_id, "presence") if f["user"] == user]


def errors(world: ChatWorld, connection_id: str) -> list[str]:
    return [f["code"] for f in world.frames(connection_id, "error")]


# -- a connection whose $disconnect never came


def test_stale_connection_is_pruned_on_410_and_its_user_announced_offline(world: ChatWorld) -> None:
    """A 410 for a connection whose $disconnect never came removes it and says the user went offline."""
    with clock_moved(world, -120):  # connected a while ago (a fresh record may still be in $connect)
        stale = world.connect("alice")
    bob, carol = world.connect("bob"), world.connect("carol")
    world.management.gone.add(stale)  # the socket vanished without a $disconnect
    world.say(bob, "bob", "anyone there?")
    assert received_texts(world, carol) == ["anyone there?"]
    assert "Item" not in world.dynamodb.get_item(
        TableName=world.tables["Connections"], Key={"connectionId": {"S": stale}}
    )
    assert presence_of(world, bob, "alice") == presence_of(world, carol, "alice") == [False]
    world.send(bob, "bob", {"action": "who"})
    assert "alice" not in world.frames(bob, "who")[-1]["users"]
    alice_again = world.connect("alice")
    assert [f["text"] for f in sync_all(world, alice_again, "alice")] == ["anyone there?"]


# -- 429s from the management API


def test_storm_of_429s_is_retried_and_whatever_still_fails_arrives_by_sync(world: ChatWorld) -> None:
    """Every recipient throttled: three 429s each are retried through; past the retries, sync delivers."""
    alice = world.connect("alice")
    patient = [world.connect(f"patient{n}") for n in range(6)]
    starved = [world.connect(f"starved{n}") for n in range(2)]
    for connection_id in patient:
        world.management.throttle_remaining[connection_id] = 3
    for connection_id in starved:
        world.management.throttle_remaining[connection_id] = 1000
    world.say(alice, "alice", "through the storm")
    assert world.frames(alice, "ack")
    for connection_id in patient:
        assert received_texts(world, connection_id) == ["through the storm"]
        assert world.management.throttle_remaining[connection_id] == 0  # all three 429s were retried
    for n, connection_id in enumerate(starved):
        assert received_texts(world, connection_id) == []
        world.management.throttle_remaining[connection_id] = 0  # the storm is over
        assert [f["text"] for f in sync_all(world, connection_id, f"starved{n}")] == ["through the storm"]


# -- DynamoDB throttling


@pytest.mark.parametrize(
    ("operation", "code"),
    [("TransactWriteItems", "ProvisionedThroughputExceededException"), ("UpdateItem", "ThrottlingException")],
)
def test_brief_dynamodb_throttling_is_retried_by_the_client(
    world: ChatWorld, operation: str, code: str
) -> None:
    """Two throttled attempts at storing (or counting) a send are retried: acked, stored, delivered once."""
    alice, bob = world.connect("alice"), world.connect("bob")
    throttle = DynamoDbThrottle(world.service.store.client, operation, code, times=2)
    world.say(alice, "alice", "despite throttling", clientMsgId="t-1")
    assert throttle.attempts >= 3 and throttle.remaining == 0
    assert [f["duplicate"] for f in world.frames(alice, "ack")] == [False]
    assert received_texts(world, bob) == ["despite throttling"]
    assert stored_texts(world) == ["despite throttling"]


@pytest.mark.parametrize("operation", ["TransactWriteItems"])
def test_long_dynamodb_throttling_fails_the_send_and_the_resend_succeeds_once(
    world: ChatWorld, operation: str
) -> None:
    """Throttled past the client's retries: internal_error, nothing half-done; the resend is stored once."""
    alice, bob = world.connect("alice"), world.connect("bob")
    code = "ProvisionedThroughputExceededException"
    throttle = DynamoDbThrottle(world.service.store.client, operation, code, times=1_000)
    world.say(alice, "alice", "try again", clientMsgId="t-2")
    throttle.remaining = 0  # the table has capacity again
    assert errors(world, alice) == ["internal_error"] and world.frames(alice, "ack") == []
    world.say(alice, "alice", "try again", clientMsgId="t-2")
    world.say(alice, "alice", "try again", clientMsgId="t-2")
    assert [f["duplicate"] for f in world.frames(alice, "ack")] == [False, True]
    assert received_texts(world, bob) == ["try again"]
    assert stored_texts(world) == ["try again"]


def test_a_budget_check_throttled_past_its_retries_admits_the_send(world: ChatWorld) -> None:
    """Every UpdateItem throttled (the budget bucket among them): the send is not refused for it; it is
    stored, acked and delivered once (refusing everyone because a counter failed is the outage)."""
    alice, bob = world.connect("alice"), world.connect("bob")
    throttle = DynamoDbThrottle(
        world.service.store.client, "UpdateItem", "ProvisionedThroughputExceededException", times=1_000
    )
    world.say(alice, "alice", "through a throttled counter", clientMsgId="t-3")
    throttle.remaining = 0
    assert [f["duplicate"] for f in world.frames(alice, "ack")] == [False]
    assert "rate_limited" not in errors(world, alice)
    assert received_texts(world, bob) == ["through a throttled counter"]
    assert stored_texts(world) == ["through a throttled counter"]


# -- a management API that hangs


def test_hung_connection_does_not_hold_up_the_others(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection never answers: the ack and every other delivery go out, the send ends by its
    timeouts (shortened here), and the hung connection gets the message by sync."""
    short = RetryPolicy(attempts=2, connect_timeout=0.5, read_timeout=0.5, max_delay=0.1)
    notifier = Notifier(world.management.endpoint, workers=8, region="us-east-1", retry=short)
    monkeypatch.setattr(world.service, "notifier", notifier)
    alice, hung = world.connect("alice"), world.connect("hung")
    others = [world.connect(f"other{n}") for n in range(5)]
    hang = HungConnection(world.management, hung)
    sending = threading.Thread(target=world.say, args=(alice, "alice", "not waiting for you"))
    try:
        sending.start()
        assert wait_until(lambda: all(received_texts(world, c) for c in others))
        sending.join(timeout=30)
        assert not sending.is_alive()  # the send ended by itself, the hung post still unanswered
        assert hang.held.is_set() and received_texts(world, hung) == []
    finally:
        hang.release()
    [ack] = world.frames(alice, "ack")
    # The held posts may still land once released; a client drops those repeats by id.
    assert {f["id"] for f in sync_all(world, hung, "hung")} == {ack["id"]}


def test_management_api_calls_are_bounded_within_the_integration_timeout() -> None:
    """The default retry policy's worst case for one post (every attempt timing out) is under 29 s."""
    policy = RetryPolicy()
    worst_case = policy.attempts * (policy.connect_timeout + policy.read_timeout) + sum(
        min(policy.max_delay, policy.base_delay * 2**attempt) for attempt in range(policy.attempts)
    )
    assert worst_case < 29


# -- the same Lambda invocation delivered twice


def message_event(connection_id: str, username: str, body: str) -> dict[str, Any]:
    """One sendmessage event, as API Gateway would (re)deliver it: same requestContext.messageId."""
    raw = event("message")
    raw["requestContext"] |= {"connectionId": connection_id, "authorizer": {"username": username}}
    raw["body"] = body
    return raw


def test_redelivered_invocation_with_client_msg_id_is_a_duplicate(world: ChatWorld) -> None:
    """The same event twice: the second is acked as a duplicate of the first; stored and delivered once."""
    alice, bob = world.connect("alice"), world.connect("bob")
    twice = message_event(alice, "alice", '{"action": "sendmessage", "text": "once", "clientMsgId": "d-1"}')
    sendmessage.handler(twice, lambda_context())
    sendmessage.handler(twice, lambda_context())
    first, second = world.frames(alice, "ack")
    assert (second["id"], second["duplicate"]) == (first["id"], True)
    assert received_texts(world, bob) == ["once"] and stored_texts(world) == ["once"]


def test_redelivered_invocation_without_client_msg_id_stores_nothing_new(world: ChatWorld) -> None:
    """The same event twice, no clientMsgId: the second delivery stores and delivers nothing new."""
    alice, bob = world.connect("alice"), world.connect("bob")
    twice = message_event(alice, "alice", '{"action": "sendmessage", "text": "only once"}')
    sendmessage.handler(twice, lambda_context())
    sendmessage.handler(twice, lambda_context())
    assert received_texts(world, bob) == ["only once"]
    assert stored_texts(world) == ["only once"]
    assert len({f["id"] for f in world.frames(alice, "ack")}) == 1


# -- a crash between storing a message and fanning it out


def crash_once_after_saving(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next save lands in DynamoDB, then the invocation dies before its ack and fan-out."""
    store = world.service.store
    save = store.save_message
    crashes = [RuntimeError("the invocation died after the write")]

    def save_then_crash(*args: Any, **kwargs: Any) -> Any:
        saved = save(*args, **kwargs)
        if crashes:
            raise crashes.pop()
        return saved

    monkeypatch.setattr(store, "save_message", save_then_crash)


def test_crash_after_store_resend_is_a_duplicate_and_sync_delivers(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored, then crashed before the ack: the resend is acked as a duplicate, and sync has it once."""
    alice, bob = world.connect("alice"), world.connect("bob")
    crash_once_after_saving(world, monkeypatch)
    world.say(alice, "alice", "did it land?", clientMsgId="x-1")
    assert errors(world, alice) == ["internal_error"] and world.frames(alice, "ack") == []
    world.say(alice, "alice", "did it land?", clientMsgId="x-1")
    [ack] = world.frames(alice, "ack")
    assert ack["duplicate"] is True
    assert [item["id"]["S"] for item in stored_messages(world, "public")] == [ack["id"]]
    assert [f["id"] for f in sync_all(world, bob, "bob")] == [ack["id"]]


def test_crash_after_store_resend_delivers_to_live_recipients(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored, then crashed before fan-out: a resend after that invocation is surely over reaches the rest."""
    alice, bob = world.connect("alice"), world.connect("bob")
    crash_once_after_saving(world, monkeypatch)
    world.say(alice, "alice", "did it land?", clientMsgId="x-2")
    with clock_moved(world, 90):
        world.say(alice, "alice", "did it land?", clientMsgId="x-2")
        world.say(alice, "alice", "did it land?", clientMsgId="x-2")  # healed once, not twice
    assert received_texts(world, bob) == ["did it land?"]
    assert [f["duplicate"] for f in world.frames(alice, "ack")] == [True, True]


def test_crash_during_fan_out_is_recovered_by_sync_and_by_the_resend(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored, then the fan-out died before the ack: sync has it at once, and the resend delivers it live."""
    alice, bob, carol = world.connect("alice"), world.connect("bob"), world.connect("carol")
    broadcast = ChatService._broadcast
    crashes = [RuntimeError("the invocation died mid fan-out")]

    def crash_once(self: ChatService, *args: Any, **kwargs: Any) -> None:
        if crashes:
            raise crashes.pop()
        broadcast(self, *args, **kwargs)

    monkeypatch.setattr(ChatService, "_broadcast", crash_once)
    world.say(alice, "alice", "lost live, kept stored", clientMsgId="f-1")
    assert errors(world, alice) == ["internal_error"] and received_texts(world, bob) == []
    [stored] = stored_messages(world, "public")
    assert [f["id"] for f in sync_all(world, carol, "carol")] == [stored["id"]["S"]]
    with clock_moved(world, 90):
        world.say(alice, "alice", "lost live, kept stored", clientMsgId="f-1")
    assert received_texts(world, bob) == ["lost live, kept stored"]
