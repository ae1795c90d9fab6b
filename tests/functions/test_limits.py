"""Per-user budgets on every route: refused past the budget with rate_limited, before any expensive
work, flooders closed, everyone else and the connection records untouched."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from chat import config, limits, wiring
from chat.config import ConfigError, Settings
from chat.errors import DependencyError
from chat.limits import Bucket, RateLimiter, Spent, Strikes, cost_of

from tests.support.world import ChatWorld

FRAMES = {
    "sendmessage": {"action": "sendmessage", "text": "spam", "clientMsgId": "flood-1"},
    "sync": {"action": "sync", "limit": 1},
    "who": {"action": "who"},
    "ping": {"action": "ping"},
    "$default": "ping",
}
ANSWERS = {"sendmessage": "ack", "sync": "synced", "who": "who", "ping": "pong", "$default": "pong"}


def budgets(monkeypatch: pytest.MonkeyPatch, **per_minute: int) -> None:
    """Set per-route budgets (``default`` for ``$default``) and rebuild the service."""
    for route, value in per_minute.items():
        monkeypatch.setenv(config.budget_variable(route), str(value))
    wiring.reset()


def answers(world: ChatWorld, connection_id: str) -> list[str]:
    """The answers this connection got (error codes by name), without messages and presence."""
    frames = world.frames(connection_id)
    return [f.get("code") or f["type"] for f in frames if f["type"] not in {"presence", "message"}]


def count_calls(world: ChatWorld) -> DynamoCalls:
    """Count from now on what the handlers' DynamoDB client calls."""
    counter = DynamoCalls()
    wiring.store().client.meta.events.register("before-call.dynamodb", counter)
    return counter


class DynamoCalls:
    """Every DynamoDB operation the handlers' client makes, counted by a botocore event hook."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


# ---- over the real handlers, moto and the management-API double --------------------------------


@pytest.mark.parametrize("route", list(FRAMES))
def test_each_route_is_refused_past_its_budget(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """A burst past the route's budget gets rate_limited (clientMsgId echoed); the others are served."""
    budgets(monkeypatch, **{route.lstrip("$"): 8})  # a burst of 2, then one every 7.5 s
    world.add_user("bob")
    a1 = world.connect("alice")
    for _ in range(3):
        world.send(a1, "alice", FRAMES[route])
    assert answers(world, a1) == [ANSWERS[route], ANSWERS[route], "rate_limited"]
    [error] = world.frames(a1, "error")
    assert error["clientMsgId"] == ("flood-1" if route == "sendmessage" else None)
    assert "try again in" in error["message"]


def test_a_sync_of_500_costs_more_than_a_sync_of_1(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Burst of 21 units: 21 syncs of 1 pass; after one sync of 500 (21 units) the next is refused."""
    budgets(monkeypatch, sync=84)
    a1, b1 = world.connect("alice"), world.connect("bob")
    for _ in range(21):
        world.send(a1, "alice", {"action": "sync", "limit": 1})
    world.send(b1, "bob", {"action": "sync", "limit": 500})
    world.send(b1, "bob", {"action": "sync", "limit": 1})
    assert answers(world, a1) == ["synced"] * 21
    assert answers(world, b1) == ["synced", "rate_limited"]


def test_a_refused_request_does_no_expensive_dynamodb_work(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused syncs never Query: the first costs one UpdateItem on the bucket, the later ones nothing."""
    budgets(monkeypatch, sync=8)
    a1 = world.connect("alice")
    world.send(a1, "alice", {"action": "sync", "limit": 500})  # spends the whole burst
    wiring.reset()  # another Lambda instance, which has not seen this user yet
    calls = count_calls(world)
    world.send(a1, "alice", {"action": "sync", "limit": 500})
    assert calls.take() == Counter({"UpdateItem": 1})  # the bucket's condition refused it; nothing read
    for _ in range(5):
        world.send(a1, "alice", {"action": "sync", "limit": 500})
    assert calls.take() == Counter()  # this instance remembers: no DynamoDB call at all
    assert answers(world, a1) == ["synced"] + ["rate_limited"] * 6


def test_a_fresh_instance_learns_a_spent_budget_from_the_table(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is the user's, not one Lambda instance's: another instance (empty memory) refuses too."""
    budgets(monkeypatch, who=4)  # a burst of 1
    a1 = world.connect("alice")
    world.send(a1, "alice", {"action": "who"})
    wiring.reset()  # a new Lambda instance: nothing in memory
    calls = count_calls(world)
    world.send(a1, "alice", {"action": "who"})
    assert answers(world, a1) == ["who", "rate_limited"]
    assert calls.take() == Counter({"UpdateItem": 1})  # refused by the stored bucket, nothing scanned


def test_a_connection_that_keeps_flooding_is_closed_once(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After FLOOD_CLOSE_AFTER refusals the connection is closed (DELETE @connections), once."""
    monkeypatch.setenv(config.FLOOD_CLOSE_AFTER, "3")
    budgets(monkeypatch, ping=4)
    a1, a2 = world.connect("alice"), world.connect("alice")
    for _ in range(3):
        world.send(a1, "alice", {"action": "ping"})
    assert a1 not in world.management.gone  # two refusals: told, not closed
    world.send(a1, "alice", {"action": "ping"})
    assert a1 in world.management.gone and world.management.deletes == [a1]
    posts = world.management.attempts[a1]
    world.send(a1, "alice", {"action": "ping"})  # a frame already in flight: not closed twice,
    assert world.management.deletes == [a1]
    assert world.management.attempts[a1] == posts  # and not answered (it would only earn a 410)
    assert a2 not in world.management.gone  # the user's other connection was not flooding


def test_others_are_served_while_one_user_floods_every_route(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One user past every budget; another user's sends, syncs, who and pings are all answered."""
    budgets(monkeypatch, sendmessage=8, sync=8, who=8, ping=8, default=8)
    world.add_user("bob")
    mallory, alice, bob = world.connect("mallory"), world.connect("alice"), world.connect("bob")
    for route in FRAMES:
        for _ in range(4):
            world.send(mallory, "mallory", FRAMES[route])
    assert answers(world, mallory).count("rate_limited") == 10
    world.say(alice, "alice", "/msg bob still here", clientMsgId="a-1")
    for route in ("sync", "who", "ping", "$default"):
        world.send(alice, "alice", FRAMES[route])
    assert [a for a in answers(world, alice) if a != "message"] == ["ack", "synced", "who", "pong", "pong"]
    assert [f["text"] for f in world.frames(bob, "message") if f["from"] == "alice"] == ["still here"]


def test_connect_and_disconnect_are_never_refused(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user past every budget still connects and disconnects, and presence stays right."""
    budgets(monkeypatch, sendmessage=4, sync=4, who=4, ping=4, default=4)
    a1 = world.connect("alice")
    for frame in FRAMES.values():
        for _ in range(3):
            world.send(a1, "alice", frame)
    for _ in range(5):
        connection = world.connect("alice")
        assert world.disconnect(connection, "alice") == {"statusCode": 200}
    assert world.service.store.online_users(now=world.service.clock()) == ["alice"]
    assert world.disconnect(a1, "alice") == {"statusCode": 200}
    assert world.service.store.online_users(now=world.service.clock()) == []


def test_a_budget_of_zero_turns_the_route_s_limit_off(
    world: ChatWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RATE_LIMIT_PING_PER_MINUTE=0: pings are never counted nor refused."""
    budgets(monkeypatch, ping=0)
    a1 = world.connect("alice")
    for _ in range(30):
        world.send(a1, "alice", {"action": "ping"})
    assert answers(world, a1) == ["pong"] * 30


# ---- the rule and the limiter, with a small in-memory table ------------------------------------


class MemoryBuckets:
    """``ChatStore.spend_budget``'s contract over a dict; ``fail`` makes it raise like a failing table."""

    def __init__(self) -> None:
        self.tat: dict[tuple[str, str], int] = {}
        self.calls = 0
        self.fail = False

    def spend_budget(
        self, username: str, route: str, *, now_ms: int, step_ms: int, ceiling_ms: int, **_: Any
    ) -> Spent:
        self.calls += 1
        if self.fail:
            raise DependencyError("could not check the rate limit")
        tat = self.tat.get((username, route), 0)
        if max(tat, now_ms) > ceiling_ms:
            return Spent(admitted=False, tat_ms=tat)
        self.tat[(username, route)] = max(tat, now_ms) + step_ms
        return Spent(admitted=True, tat_ms=self.tat[(username, route)])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_at_the_budget_rate() -> None:
    """60 a minute, burst 15: 15 at once, then one a second, never more."""
    table, clock = MemoryBuckets(), Clock()
    limiter = RateLimiter(table, {"ping": 60}, flood_close_after=20, clock=clock)
    admitted = [limiter.admit("alice", "ping", 1).admitted for _ in range(20)]
    assert admitted == [True] * 15 + [False] * 5
    clock.now += 1.0
    assert [limiter.admit("alice", "ping", 1).admitted for _ in range(2)] == [True, False]
    clock.now += 60
    assert sum(limiter.admit("alice", "ping", 1).admitted for _ in range(30)) == 15


def test_the_in_memory_pre_check_refuses_only_what_the_table_would() -> None:
    """Refusals after the first come from memory (no table call), and stop the moment tokens refill."""
    table, clock = MemoryBuckets(), Clock()
    limiter = RateLimiter(table, {"who": 4}, flood_close_after=20, clock=clock)
    assert limiter.admit("alice", "who", 1).admitted
    assert not limiter.admit("alice", "who", 1).admitted
    calls = table.calls
    verdicts = [limiter.admit("alice", "who", 1) for _ in range(100)]
    assert not any(v.admitted or v.asked_table for v in verdicts) and table.calls == calls
    assert verdicts[-1].retry_after_s == pytest.approx(15.0)
    clock.now += 15.0
    assert limiter.admit("alice", "who", 1).admitted


def test_a_failing_table_admits_but_memory_still_refuses_known_flooders() -> None:
    """A limiter that cannot reach DynamoDB lets requests through, except those it already knows are over."""
    table, clock = MemoryBuckets(), Clock()
    limiter = RateLimiter(table, {"sync": 8}, flood_close_after=20, clock=clock)
    limiter.admit("mallory", "sync", 1), limiter.admit("mallory", "sync", 1)
    table.fail = True
    assert not limiter.admit("mallory", "sync", 1).admitted
    assert limiter.admit("alice", "sync", 1).admitted


def test_costs_and_bucket_arithmetic() -> None:
    """sync costs 1 + limit // 25; a cost above the burst is charged the burst (admitted from full)."""
    costs = [cost_of("sync", json.dumps({"action": "sync", "limit": n})) for n in (1, 24, 100, 500)]
    assert costs == [1, 1, 5, 21]
    assert cost_of("sync", '{"action": "sync"}') == 5 and cost_of("sync", "not json") == 1
    assert cost_of("who", None) == cost_of("ping", "{}") == cost_of("sendmessage", "{}") == 1
    bucket = Bucket(per_minute=8)  # burst 2, a unit every 7.5 s
    assert (bucket.burst, bucket.unit_ms, bucket.step_ms(6)) == (2, 7500, 15000)
    assert not bucket.refuses(tat_ms=0, now_ms=10**6, cost=6) and bucket.refuses(10**6 + 1, 10**6, 6)


def test_budgets_come_from_the_environment_with_defaults_in_one_place() -> None:
    """Every route has a default; a variable changes one; 0 turns it off; negatives are refused."""
    required = {"CONNECTIONS_TABLE": "c", "PRESENCE_TABLE": "p", "MESSAGES_TABLE": "m", "USER_POOL_ID": "u"}
    assert Settings.from_env(required).budgets_per_minute == config.DEFAULT_BUDGETS_PER_MINUTE
    changed = Settings.from_env(
        {**required, "RATE_LIMIT_DEFAULT_PER_MINUTE": "0", "RATE_LIMIT_SYNC_PER_MINUTE": "9"}
    )
    assert (changed.budgets_per_minute["$default"], changed.budgets_per_minute["sync"]) == (0, 9)
    with pytest.raises(ConfigError, match="RATE_LIMIT_WHO_PER_MINUTE"):
        Settings.from_env({**required, "RATE_LIMIT_WHO_PER_MINUTE": "-1"})


def test_every_message_route_has_a_budget() -> None:
    """A route added to the API without a line in DEFAULT_BUDGETS_PER_MINUTE would be unlimited: none is."""
    from infra import constants

    message_routes = {route.key for route in constants.ROUTES} - {"$connect", "$disconnect"}
    assert message_routes == set(config.DEFAULT_BUDGETS_PER_MINUTE)
    assert all(n > 0 for n in config.DEFAULT_BUDGETS_PER_MINUTE.values())


def test_conversation_routes_cost_what_they_may_read() -> None:
    """history costs 1 + limit // 25 (3 for the default 50), inbox 5, typing and read 1."""
    assert limits.cost_of("history", '{"action": "history"}') == 3
    assert limits.cost_of("history", '{"action": "history", "limit": 100}') == 5
    assert limits.cost_of("history", "not json") == 1
    assert limits.cost_of("inbox", None) == limits.INBOX_COST == 5
    assert limits.cost_of("typing", '{"action": "typing", "to": "bob"}') == 1
    assert limits.cost_of("read", "{}") == 1


def test_strikes_count_the_refusals_being_told_until_each_is_told() -> None:
    """Refusals up to the limit are being told until ``told``; those past it (nothing is posted) are not."""
    strikes = Strikes(limit=3)
    assert [strikes.add("c1", 0.0) for _ in range(3)] == [1, 2, 3]
    strikes.told("c1")
    strikes.told("c1")
    assert not strikes.wait_until_told("c1", timeout_s=0.05)  # one still being told
    threading.Timer(0.05, strikes.told, args=("c1",)).start()
    assert strikes.wait_until_told("c1", timeout_s=5)
    assert strikes.add("c1", 0.0) == 4 and strikes.wait_until_told("c1", timeout_s=0)
    assert strikes.wait_until_told("another", timeout_s=0)
