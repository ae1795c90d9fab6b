"""The presence grace: offline only once a user's last connection has stayed closed for the grace,
nothing at all for a reconnect within it; checks delivered late or twice change nothing; a
$disconnect whose writes failed is healed by its check."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from chat.config import ConfigError, Settings
from chat.grace import PresenceCheck
from chat.handlers import presence

from local_stack.queues import sqs_event
from tests.reliability.faults import DynamoDbThrottle
from tests.support.world import ChatWorld

GRACE = 1


@pytest.fixture
def grace_world(world: ChatWorld) -> ChatWorld:
    return world.with_presence_grace(GRACE)


def about(world: ChatWorld, connection_id: str, user: str) -> list[bool]:
    return [f["online"] for f in world.frames(connection_id, "presence") if f["user"] == user]


def who(world: ChatWorld, connection_id: str, user: str) -> list[str]:
    world.send(connection_id, user, {"action": "who"})
    users: list[str] = world.frames(connection_id, "who")[-1]["users"]
    return users


def after_the_grace(world: ChatWorld) -> int:
    time.sleep(GRACE + 0.3)
    return world.run_presence_checks()


def alice_leaves_and_her_checks_fall_due(world: ChatWorld) -> tuple[str, list[dict[str, Any]]]:
    """Bob watching, Alice closes her only connection; past the grace, Bob's connection and the
    queue's messages (not yet handed to the worker)."""
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.disconnect(a1, "alice")
    time.sleep(GRACE + 0.3)
    assert world.presence_queues is not None
    messages = world.sqs.receive_message(QueueUrl=world.presence_queues.url, MaxNumberOfMessages=10)
    return b1, messages["Messages"]


def test_reconnect_within_the_grace_sends_no_presence_frame(grace_world: ChatWorld) -> None:
    """A user who drops their only connection and reconnects at once causes no presence frame at all."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.disconnect(a1, "alice")
    world.connect("alice")
    assert after_the_grace(world) == 1
    assert about(world, b1, "alice") == [True]
    assert who(world, b1, "bob") == ["alice", "bob"]


def test_offline_comes_only_after_the_grace_and_who_lists_the_user_meanwhile(grace_world: ChatWorld) -> None:
    """During the grace `who` still lists the user and nobody hears offline; after it, everyone does, once."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    before = time.time()
    world.disconnect(a1, "alice")
    assert about(world, b1, "alice") == [True]
    assert who(world, b1, "bob") == ["alice", "bob"]
    assert after_the_grace(world) == 1
    assert about(world, b1, "alice") == [True, False]
    offline = world.frames(b1, "presence")[-1]
    left_at = datetime.fromisoformat(offline["at"]).timestamp()
    assert before - 0.01 <= left_at <= before + 1  # when the last connection closed, not when announced
    assert who(world, b1, "bob") == ["bob"]


def test_presence_frames_carry_when_the_change_happened(grace_world: ChatWorld) -> None:
    """`at` is ISO 8601 UTC with milliseconds; the offline after an online is stamped later."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.disconnect(a1, "alice")
    after_the_grace(world)
    online, offline = world.frames(b1, "presence")
    for frame in (online, offline):
        assert frame["at"].endswith("Z") and len(frame["at"]) == len("2026-01-01T00:00:00.000Z")
    assert online["at"] < offline["at"]


def test_a_check_delivered_twice_or_after_a_reconnect_changes_nothing(grace_world: ChatWorld) -> None:
    """SQS delivers at least once: the same check again, even after the user is back, announces nothing."""
    world = grace_world
    b1, messages = alice_leaves_and_her_checks_fall_due(world)
    assert world.presence_queues is not None
    event = sqs_event(messages, queue_arn=world.presence_queues.arn, region="us-east-1")
    assert world.invoke(presence.handler, event) == {"batchItemFailures": []}
    world.invoke(presence.handler, event)
    assert about(world, b1, "alice") == [True, False]
    world.connect("alice")
    world.invoke(presence.handler, event)
    assert about(world, b1, "alice") == [True, False, True]
    assert who(world, b1, "bob") == ["alice", "bob"]


def test_a_check_that_fails_is_reported_alone_and_a_body_that_is_no_check_is_dropped(
    grace_world: ChatWorld,
) -> None:
    """The worker answers SQS with the ids of the records that raised (the queue delivers those
    again); a body that is not a check is logged and left out, since retrying cannot fix it."""
    world = grace_world
    b1, checks = alice_leaves_and_her_checks_fall_due(world)
    assert world.presence_queues is not None
    garbage = {**checks[0], "MessageId": "not-a-check", "Body": '{"hello": 1}'}
    event = sqs_event([garbage, *checks], queue_arn=world.presence_queues.arn, region="us-east-1")
    throttle = DynamoDbThrottle(
        world.service.store.client, "GetItem", "ProvisionedThroughputExceededException", times=1_000
    )
    answer = world.invoke(presence.handler, event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in checks]}
    assert about(world, b1, "alice") == [True]  # nothing announced by the failed checks
    throttle.remaining = 0
    assert world.invoke(presence.handler, event) == {"batchItemFailures": []}
    assert about(world, b1, "alice") == [True, False]


def test_the_last_of_two_tabs_starts_the_grace_not_the_first(grace_world: ChatWorld) -> None:
    """Closing one of two tabs schedules a check that finds the user online and says nothing."""
    world = grace_world
    b1 = world.connect("bob")
    a1, a2 = world.connect("alice"), world.connect("alice")
    world.disconnect(a1, "alice")
    after_the_grace(world)
    assert about(world, b1, "alice") == [True]
    world.disconnect(a2, "alice")
    after_the_grace(world)
    assert about(world, b1, "alice") == [True, False]


def test_without_a_grace_offline_is_announced_at_once(world: ChatWorld) -> None:
    """Grace 0 is the old behaviour: the last close announces offline in the $disconnect itself."""
    world.with_presence_grace(0)
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.disconnect(a1, "alice")
    assert about(world, b1, "alice") == [True, False]


def test_a_failed_disconnect_is_healed_by_its_check(grace_world: ChatWorld) -> None:
    """$disconnect's table writes fail: the user is not left online; the check finds the socket gone
    (GET @connections answers 410), prunes it and announces offline, once the grace has passed."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    throttle = DynamoDbThrottle(
        world.service.store.client, "DeleteItem", "ProvisionedThroughputExceededException", times=1_000
    )
    world.management.gone.add(a1)  # API Gateway closed the socket
    assert world.disconnect(a1, "alice")["statusCode"] == 500
    throttle.remaining = 0  # the table has capacity again
    assert who(world, b1, "bob") == ["alice", "bob"]  # the ghost, for now
    world.later(seconds=60)  # past the handshake grace: a 410 now means gone
    assert after_the_grace(world) == 1  # the first delivery after the grace heals it
    assert world.management.lookups == [a1]
    assert about(world, b1, "alice") == [True, False]
    assert who(world, b1, "bob") == ["bob"]


REQUIRED = {"CONNECTIONS_TABLE": "c", "PRESENCE_TABLE": "p", "MESSAGES_TABLE": "m", "USER_POOL_ID": "u"}


def test_the_grace_setting_defaults_to_15_and_is_bounded_by_sqs() -> None:
    """PRESENCE_GRACE_SECONDS: 15 unless set; 0 to 900 (SQS's longest delay); anything else is named."""
    assert Settings.from_env(REQUIRED).presence_grace_seconds == 15
    assert Settings.from_env({**REQUIRED, "PRESENCE_GRACE_SECONDS": "0"}).presence_grace_seconds == 0
    for bad in ("901", "-1", "soon"):
        with pytest.raises(ConfigError, match="PRESENCE_GRACE_SECONDS"):
            Settings.from_env({**REQUIRED, "PRESENCE_GRACE_SECONDS": bad})


def test_the_local_stack_takes_the_grace_as_a_flag() -> None:
    """`python -m local_stack --presence-grace 3` (default 15); past 900 is refused."""
    from local_stack.__main__ import parse_options

    assert parse_options([])[0].presence_grace_s == 15
    assert parse_options(["--presence-grace", "3"])[0].presence_grace_s == 3
    with pytest.raises(SystemExit):
        parse_options(["--presence-grace", "901"])


def test_a_check_delivered_early_looks_again_when_the_grace_is_due(grace_world: ChatWorld) -> None:
    """A check that arrives before the grace has run out announces nothing and queues itself again."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    world.disconnect(a1, "alice")
    assert world.presence_queues is not None
    world.service.check_presence(PresenceCheck(world.management.endpoint, "alice", a1))
    assert about(world, b1, "alice") == [True]
    time.sleep(GRACE + 0.3)
    assert world.run_presence_checks() == 2  # the original and the one queued again
    assert about(world, b1, "alice") == [True, False]


def test_who_lists_the_user_at_every_step_of_their_last_close(grace_world: ChatWorld) -> None:
    """The last connection leaves the presence set and the grace mark is set in one write: a `who`
    after any of $disconnect's writes still lists the user."""
    world = grace_world
    b1 = world.connect("bob")
    a1 = world.connect("alice")
    store = world.service.store
    listed_after_each_write: list[bool] = []

    def look(**_: object) -> None:
        listed_after_each_write.append("alice" in store.online_users(now=time.time()))

    store.client.meta.events.register("after-call.dynamodb.UpdateItem", look)
    store.client.meta.events.register("after-call.dynamodb.DeleteItem", look)
    try:
        world.disconnect(a1, "alice")
    finally:
        store.client.meta.events.unregister("after-call.dynamodb.UpdateItem", look)
        store.client.meta.events.unregister("after-call.dynamodb.DeleteItem", look)
    assert listed_after_each_write and all(listed_after_each_write), listed_after_each_write
    assert who(world, b1, "bob") == ["alice", "bob"]
