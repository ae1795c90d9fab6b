"""chat.service's rules, directly and fast: ChatService over the in-memory fakes of tests/functions/fakes.py.

Who receives what, in which order, what a duplicate does, when a gone connection is pruned, how
presence is announced and what budgets answer. The same rules are proved end to end, through
moto and real sockets, by the other tests in this folder.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from chat.cursor import Cursor, id_time_ms, lowest_id_at
from chat.errors import DependencyError, InvalidJson, InvalidMessage, UnknownAction, UnknownUser
from chat.grace import PresenceCheck
from chat.limits import RateLimiter
from chat.notifier import Delivery
from chat.observability import metrics
from chat.service import Caller, ChatService
from chat.store import ConnectionRecord, user_feed

from tests.functions.fakes import (
    T0,
    Clock,
    FakeCloser,
    FakeDirectory,
    FakeDispatcher,
    FakeNotifier,
    FakeProbe,
    FakeScheduler,
    FakeStore,
    settings,
)

OVERLAP_MS = 30_000  # the default sync overlap


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    """Metrics accumulate in one process-wide object; nothing here publishes them."""
    yield
    metrics.clear_metrics()


@dataclass
class Core:
    """A ChatService over fakes, and the verbs the tests speak in."""

    settings: dict[str, Any] = field(default_factory=dict)
    users: tuple[str, ...] = ("alice", "bob", "carol", "dave", "erin")
    page_size: int = 1000
    scheduler: FakeScheduler | None = None
    dispatcher: FakeDispatcher | None = None
    budgets: dict[str, int] | None = None
    flood_close_after: int = 3

    def __post_init__(self) -> None:
        self.clock = Clock()
        self.store = FakeStore(page_size=self.page_size)
        self.notifier = FakeNotifier()
        self.directory = FakeDirectory(*self.users)
        self.closer = FakeCloser()
        self.probe = FakeProbe()
        limiter = None
        if self.budgets is not None:
            limiter = RateLimiter(
                self.store, self.budgets, flood_close_after=self.flood_close_after, clock=self.clock
            )
        self.service = ChatService(
            store=self.store,
            notifier=self.notifier,
            directory=self.directory,
            settings=settings(**self.settings),
            dispatcher=self.dispatcher,
            limiter=limiter,
            closer=self.closer,
            scheduler=self.scheduler,
            probe=self.probe,
            clock=self.clock,
        )
        self._numbers = iter(range(1, 10_000))

    def connect(self, username: str) -> Caller:
        caller = Caller(f"{username}-{next(self._numbers)}=", username)
        self.service.connect(caller)
        return caller

    def say(self, caller: Caller, text: str, **fields: Any) -> None:
        self.service.send_message(caller, {"action": "sendmessage", "text": text, **fields})

    def sync(self, caller: Caller, **fields: Any) -> None:
        self.service.sync(caller, {"action": "sync", **fields})

    def texts(self, caller: Caller) -> list[str]:
        return [f["text"] for f in self.notifier.frames(caller.connection_id, "message")]

    def presence(self, caller: Caller) -> list[tuple[str, bool]]:
        return [(f["user"], f["online"]) for f in self.notifier.frames(caller.connection_id, "presence")]

    def recorded(self, caller: Caller) -> bool:
        return caller.connection_id in self.store.connections


def iso(epoch_seconds: float) -> str:
    return (
        datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


# ---- who receives a message ----------------------------------------------------------------------


def test_a_public_message_reaches_every_open_connection_the_senders_own_included() -> None:
    """Every connection of every user gets the public message, each once, as the protocol frames it."""
    core = Core()
    a1, a2, b1 = core.connect("alice"), core.connect("alice"), core.connect("bob")
    core.say(a1, "hello all")
    [stored] = core.store.stored()
    for caller in (a1, a2, b1):
        assert core.notifier.frames(caller.connection_id, "message") == [
            {
                "type": "message",
                "id": stored.id,
                "cursor": Cursor.for_live(stored.id, OVERLAP_MS).encode(),
                "from": "alice",
                "to": None,
                "text": "hello all",
                "sentAt": iso(T0),
                "clientMsgId": None,
            }
        ]
    assert id_time_ms(stored.id) == ms(T0)


def test_a_private_message_reaches_every_connection_of_to_and_the_senders_other_ones() -> None:
    """`to`'s every connection and the sender's *other* connections get it; nobody else does."""
    core = Core()
    a1, a2 = core.connect("alice"), core.connect("alice")
    b1, b2 = core.connect("bob"), core.connect("bob")
    c1 = core.connect("carol")
    from_the_event = Caller(*json.loads(json.dumps([a1.connection_id, "alice"])))  # equal, not identical
    core.say(from_the_event, "psst", to="bob", clientMsgId="m-1")
    for caller in (b1, b2, a2):
        assert core.texts(caller) == ["psst"], caller
    assert core.texts(a1) == [] and core.texts(c1) == []
    [frame] = core.notifier.frames(b1.connection_id, "message")
    assert (frame["from"], frame["to"], frame["clientMsgId"]) == ("alice", "bob", "m-1")
    [stored] = core.store.stored(user_feed("bob"))
    assert core.store.stored(user_feed("alice")) == [stored] and core.store.stored() == []
    core.say(a2, "from the other tab", to="bob")
    assert core.texts(a1) == ["from the other tab"] and core.texts(a2) == ["psst"]
    core.say(b1, "back to you", to="alice")  # a recipient whose name sorts before the sender's
    assert core.texts(a1)[-1] == "back to you" and core.texts(b2)[-1] == "back to you"


def test_a_private_message_to_an_unknown_user_is_refused_storing_and_posting_nothing() -> None:
    """No account behind `to`: unknown_user with the clientMsgId, and nothing stored or posted."""
    core = Core(users=("alice",))
    a1 = core.connect("alice")
    with pytest.raises(UnknownUser) as refused:
        core.say(a1, "hello?", to="nobody", clientMsgId="u-1")
    assert refused.value.client_msg_id == "u-1"
    assert core.store.feeds == {} and core.notifier.posts == []


def test_a_private_message_to_oneself_is_invalid() -> None:
    """A private message needs another user: invalid_message, and the directory is not asked."""
    core = Core()
    a1 = core.connect("alice")
    with pytest.raises(InvalidMessage) as refused:
        core.say(a1, "note to self", to="alice", clientMsgId="s-1")
    assert refused.value.client_msg_id == "s-1"
    assert core.store.feeds == {} and core.directory.lookups == []


def test_a_user_who_connected_is_known_without_asking_the_directory() -> None:
    """A valid token proves the account: a private message to a connected user needs no lookup."""
    core = Core(users=())
    a1, b1 = core.connect("alice"), core.connect("bob")
    core.say(a1, "hi", to="bob")
    assert core.texts(b1) == ["hi"]
    assert core.directory.users == {"alice", "bob"}


# ---- order and acknowledgement -------------------------------------------------------------------


def test_a_message_is_stored_then_delivered_everywhere_then_acknowledged() -> None:
    """Every post happens after the message is stored, and the ack comes after every copy."""
    core = Core()
    a1 = core.connect("alice")
    listeners = [core.connect("bob") for _ in range(3)]
    seen: list[tuple[str, str, int]] = []
    core.notifier.on_post = lambda cid, frame: seen.append((cid, frame["type"], len(core.store.stored())))
    core.say(a1, "hi", clientMsgId="first")
    assert [stored for _, _, stored in seen] == [1] * 5
    assert seen[-1][:2] == (a1.connection_id, "ack")
    copies = {cid for cid, kind, _ in seen[:-1] if kind == "message"}
    assert copies == {a1.connection_id, *(c.connection_id for c in listeners)}


def test_the_ack_names_the_stored_message_and_its_cursor() -> None:
    """The ack carries the stored id, a live cursor for it, the clientMsgId, and duplicate false."""
    core = Core()
    a1 = core.connect("alice")
    core.clock.advance(1.5)
    core.say(a1, "hi", clientMsgId="m-7")
    [stored] = core.store.stored()
    assert core.notifier.frames(a1.connection_id, "ack") == [
        {
            "type": "ack",
            "id": stored.id,
            "cursor": Cursor(after=stored.id, floor_ms=ms(T0 + 1.5) - OVERLAP_MS).encode(),
            "clientMsgId": "m-7",
            "duplicate": False,
        }
    ]


def test_messages_are_kept_for_the_retention_in_days() -> None:
    """A message expires retention_days whole days after it was sent, in every feed it is in."""
    core = Core(settings={"retention_days": 3})
    a1, core_b = core.connect("alice"), core.connect("bob")
    core.say(a1, "public")
    core.say(a1, "private", to="bob")
    [public] = core.store.stored()
    [private] = core.store.stored(user_feed("bob"))
    assert core.store.expiry_of(public.id) == int(T0) + 3 * 86400
    for feed in (user_feed("alice"), user_feed("bob")):
        assert core.store.expiry_of(private.id, feed) == int(T0) + 3 * 86400
    assert core.texts(core_b) == ["public", "private"]


# ---- duplicates ------------------------------------------------------------------------------------


def test_a_resent_client_msg_id_stores_and_delivers_nothing_new() -> None:
    """The same clientMsgId again: one stored message, one copy each, and an ack saying duplicate."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    core.say(a1, "once", clientMsgId="m-1")
    core.say(a1, "once", clientMsgId="m-1")
    assert len(core.store.stored()) == 1 and core.texts(b1) == ["once"]
    first, second = core.notifier.frames(a1.connection_id, "ack")
    assert second == {**first, "duplicate": True}


def test_the_frame_id_makes_a_repeated_invocation_without_client_msg_id_a_duplicate() -> None:
    """API Gateway's frame id keys a send without clientMsgId; without either, each send is new."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    body = {"action": "sendmessage", "text": "just once"}
    core.service.send_message(a1, body, frame_id="f-1")
    core.service.send_message(a1, body, frame_id="f-1")
    core.service.send_message(a1, body, frame_id="f-2")
    core.service.send_message(a1, body)
    core.service.send_message(a1, body)
    assert len(core.store.stored()) == 4 and len(core.texts(b1)) == 4
    acks = core.notifier.frames(a1.connection_id, "ack")
    assert [a["duplicate"] for a in acks] == [False, True, False, False, False]
    assert acks[1]["id"] == acks[0]["id"] and acks[1]["clientMsgId"] is None


def test_a_resend_after_a_minute_of_a_completed_fan_out_is_not_delivered_again() -> None:
    """Once a message's fan-out completed, a resend however late delivers nothing."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    core.say(a1, "done", clientMsgId="m-1", to="bob")
    core.clock.advance(61)
    core.say(a1, "done", clientMsgId="m-1", to="bob")
    assert core.texts(b1) == ["done"]
    assert [a["duplicate"] for a in core.notifier.frames(a1.connection_id, "ack")] == [False, True]


def store_then_die(core: Core, sender: Caller, text: str, client_msg_id: str) -> None:
    """Send ``text``: it is stored, then the invocation dies at its first message post."""

    def die_on_the_first_copy(connection_id: str, frame: dict[str, Any]) -> None:
        if frame["type"] == "message":
            raise RuntimeError("the invocation died here")

    core.notifier.on_post = die_on_the_first_copy
    with pytest.raises(RuntimeError):
        core.say(sender, text, clientMsgId=client_msg_id)
    core.notifier.on_post = None


def test_a_message_whose_fan_out_died_is_delivered_by_a_resend_a_full_minute_on() -> None:
    """Stored, then the invocation died: a resend within 60 s delivers nothing (the first may still
    run), one at 60 s delivers it once, and later resends deliver nothing more."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    store_then_die(core, a1, "survivor", "c-1")
    core.clock.advance(59.9995)
    core.say(a1, "survivor", clientMsgId="c-1")
    assert core.texts(b1) == []
    core.clock.now = T0 + 60
    core.say(a1, "survivor", clientMsgId="c-1")
    assert core.texts(b1) == ["survivor"] and core.texts(a1) == ["survivor"]
    core.clock.advance(120)
    core.say(a1, "survivor", clientMsgId="c-1")
    assert core.texts(b1) == ["survivor"]
    assert [a["duplicate"] for a in core.notifier.frames(a1.connection_id, "ack")] == [True, True, True]
    assert len(core.store.stored()) == 1


def test_a_message_whose_fan_out_died_is_delivered_by_a_resend_long_after() -> None:
    """A resend well past the minute delivers the message its first invocation stored and lost."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    store_then_die(core, a1, "late", "c-2")
    core.clock.advance(90)
    core.say(a1, "late", clientMsgId="c-2")
    assert core.texts(b1) == ["late"]


# ---- gone connections --------------------------------------------------------------------------------


def test_a_gone_recipient_is_pruned_and_its_user_announced_offline() -> None:
    """A 410 for a connection recorded over 30 s ago forgets it and, its user's last, says offline."""
    core = Core()
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(31)
    core.say(b1, "anyone there?")
    assert not core.recorded(a1) and "alice" not in core.store.presence
    [offline] = core.notifier.frames(b1.connection_id, "presence")[-1:]
    assert offline == {"type": "presence", "user": "alice", "online": False, "at": iso(T0 + 31)}
    core.service.who(b1)
    assert core.notifier.frames(b1.connection_id, "who")[-1]["users"] == ["bob"]


def test_a_410_within_the_handshake_grace_prunes_nothing() -> None:
    """Up to 30 s after it was recorded a connection may still be in its $connect: a 410 keeps it."""
    core = Core()
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(30)
    core.say(b1, "welcome?")
    assert core.recorded(a1) and core.presence(b1) == [("alice", True)]
    core.clock.advance(1)
    core.say(b1, "still there?")
    assert not core.recorded(a1) and core.presence(b1) == [("alice", True), ("alice", False)]


def test_a_user_with_another_connection_is_not_announced_offline_when_one_is_pruned() -> None:
    """Pruning one of two connections of a user announces nothing."""
    core = Core()
    b1, a1, a2 = core.connect("bob"), core.connect("alice"), core.connect("alice")
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(31)
    core.say(b1, "hi")
    assert not core.recorded(a1) and core.recorded(a2)
    assert core.presence(b1) == [("alice", True)]


def test_a_gone_caller_is_pruned_when_a_reply_finds_it_gone() -> None:
    """A reply (here to `who`) answered 410 prunes the caller's connection and announces it offline."""
    core = Core()
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(31)
    core.service.who(a1)
    assert not core.recorded(a1)
    assert core.presence(b1) == [("alice", True), ("alice", False)]


def test_a_caller_gone_during_sync_is_pruned_and_the_replay_stops() -> None:
    """A replayed frame answered 410 prunes the caller at once: no further frame, no synced."""
    core = Core()
    b1, a1 = core.connect("bob"), core.connect("alice")
    for text in ("one", "two", "three"):
        core.say(b1, text)
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(31)
    tried: list[str] = []
    core.notifier.on_post = lambda cid, frame: (
        tried.append(frame["type"]) if cid == a1.connection_id else None
    )
    core.sync(a1)
    assert tried == ["message"]
    assert not core.recorded(a1) and core.presence(b1)[-1] == ("alice", False)


def test_connections_found_gone_while_announcing_offline_are_pruned_for_three_rounds() -> None:
    """Each offline announcement that meets another gone connection prunes it in the next round,
    three rounds at most: what the third round meets is left for a later post."""
    core = Core()
    bob = core.connect("bob")
    alice, carol, dave, erin = (core.connect(name) for name in ("alice", "carol", "dave", "erin"))
    core.clock.advance(31)
    core.notifier.gone.add(alice.connection_id)
    # Each socket dies just as the offline announcement of the previous user reaches it.
    dies_on = {"alice": carol, "carol": dave, "dave": erin}

    def die_on_cue(connection_id: str, frame: dict[str, Any]) -> None:
        victim = dies_on.get(frame.get("user", ""))
        if (
            frame["type"] == "presence"
            and not frame["online"]
            and victim
            and connection_id == victim.connection_id
        ):
            core.notifier.gone.add(connection_id)

    core.notifier.on_post = die_on_cue
    core.say(bob, "hello?")
    assert [core.recorded(c) for c in (alice, carol, dave, erin)] == [False, False, False, True]
    offline = [user for user, online in core.presence(bob) if not online]
    assert offline == ["alice", "carol", "dave"]


def test_a_failing_prune_does_not_fail_the_delivery() -> None:
    """Posts made are not undone: a prune that fails is logged, the ack still goes, the send completes."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    core.notifier.gone.add(b1.connection_id)
    core.clock.advance(31)
    core.store.failing.add("remove_connection")
    core.say(a1, "hi", clientMsgId="p-1")
    assert [a["duplicate"] for a in core.notifier.frames(a1.connection_id, "ack")] == [False]
    assert core.store.dedup[("alice", "p-1")].delivered
    assert core.recorded(b1)


def test_a_worker_posts_its_chunk_and_prunes_the_gone_ones() -> None:
    """A fan-out worker's job: the frame to each connection of its chunk, the gone ones pruned."""
    core = Core()
    b1, a1, c1 = core.connect("bob"), core.connect("alice"), core.connect("carol")
    core.notifier.gone.add(a1.connection_id)
    core.clock.advance(31)
    frame = json.dumps({"type": "pong"})
    core.service.deliver(
        [ConnectionRecord(a1.connection_id, "alice"), ConnectionRecord(b1.connection_id, "bob")], frame
    )
    assert core.notifier.frames(b1.connection_id, "pong") == [{"type": "pong"}]
    assert core.notifier.frames(c1.connection_id, "pong") == []
    assert not core.recorded(a1) and core.presence(c1)[-1] == ("alice", False)


# ---- large audiences -------------------------------------------------------------------------------


def test_a_page_larger_than_a_chunk_goes_to_workers_chunk_by_chunk() -> None:
    """Past fanout_chunk_size, a page is split into chunks for worker invocations, none posted here."""
    workers = FakeDispatcher()
    core = Core(settings={"fanout_chunk_size": 2}, dispatcher=workers)
    a1 = core.connect("alice")
    others = [core.connect("bob") for _ in range(4)]
    joined = workers.jobs[:]
    core.say(a1, "to many")
    jobs = workers.jobs[len(joined) :]
    everyone = [c.connection_id for c in (a1, *others)]
    assert [[c.connection_id for c in job[2]] for job in jobs] == [everyone[0:2], everyone[2:4], everyone[4:]]
    assert {job[0] for job in jobs} == {core.notifier.endpoint}
    [stored] = core.store.stored()
    assert {json.loads(job[1])["id"] for job in jobs} == {stored.id}
    assert core.texts(a1) == [] and len(core.notifier.frames(a1.connection_id, "ack")) == 1


def test_the_new_connection_is_left_out_of_the_chunks_announcing_it() -> None:
    """An online announcement handed to workers skips the connection that just opened."""
    workers = FakeDispatcher()
    core = Core(settings={"fanout_chunk_size": 1}, dispatcher=workers)
    b1, b2 = core.connect("bob"), core.connect("bob")
    a1 = core.connect("alice")
    [(_, frame, [first]), (_, _, [second])] = workers.jobs
    assert {first.connection_id, second.connection_id} == {b1.connection_id, b2.connection_id}
    assert json.loads(frame)["user"] == "alice" and a1.connection_id not in frame


@pytest.mark.parametrize("audience", [2, 3])
def test_a_page_no_larger_than_a_chunk_is_posted_here(audience: int) -> None:
    """A page of up to fanout_chunk_size connections needs no worker."""
    workers = FakeDispatcher()
    core = Core(settings={"fanout_chunk_size": 3}, dispatcher=workers)
    callers = [core.connect("bob") for _ in range(audience)]
    core.say(callers[0], "small")
    assert workers.jobs == [] and all(core.texts(c) == ["small"] for c in callers)


def test_chunks_no_worker_took_are_posted_here() -> None:
    """When the worker cannot be invoked, the route posts those chunks itself."""
    core = Core(settings={"fanout_chunk_size": 2}, dispatcher=FakeDispatcher(accepts=False))
    callers = [core.connect("bob") for _ in range(5)]
    core.say(callers[0], "by hand")
    assert all(core.texts(c) == ["by hand"] for c in callers)


def test_every_page_of_the_connections_table_is_delivered() -> None:
    """A public message reaches the connections of every page of the table, pruning gone ones in each."""
    core = Core(page_size=2)
    callers = [core.connect(name) for name in ("alice", "bob", "carol", "dave", "erin")]
    core.notifier.gone.add(callers[4].connection_id)
    core.clock.advance(31)
    core.say(callers[0], "paged")
    assert [core.texts(c) for c in callers[:4]] == [["paged"]] * 4
    assert not core.recorded(callers[4])


# ---- presence ----------------------------------------------------------------------------------------


def test_the_first_connection_of_a_user_announces_online_to_everyone_else_once() -> None:
    """The first tab tells every other connection when it came online; a second tab tells nobody."""
    core = Core()
    b1 = core.connect("bob")
    core.clock.advance(2)
    a1 = core.connect("alice")
    core.connect("alice")
    assert core.notifier.frames(b1.connection_id, "presence") == [
        {"type": "presence", "user": "alice", "online": True, "at": iso(T0 + 2)}
    ]
    assert core.notifier.frames(a1.connection_id) == []


def test_without_a_grace_the_last_close_announces_offline_at_once() -> None:
    """No presence queue: the first of two tabs closing says nothing, the last says offline now."""
    core = Core()
    b1 = core.connect("bob")
    a1, a2 = core.connect("alice"), core.connect("alice")
    core.service.disconnect(a1)
    assert core.presence(b1) == [("alice", True)]
    core.clock.advance(5)
    core.service.disconnect(a2)
    assert core.notifier.frames(b1.connection_id, "presence")[-1] == {
        "type": "presence",
        "user": "alice",
        "online": False,
        "at": iso(T0 + 5),
    }
    assert core.service.presence_grace_seconds == 0


def test_with_a_grace_offline_comes_from_the_check_once_the_grace_has_passed() -> None:
    """The last close schedules a check a grace later and says nothing; `who` still lists the user;
    the check then announces offline at the time of the close, once however often it runs."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.clock.advance(100)
    core.service.disconnect(a1)
    check = PresenceCheck(core.notifier.endpoint, "alice", a1.connection_id)
    assert scheduler.checks == [(check, 15)]
    assert core.presence(b1) == [("alice", True)]
    core.service.who(b1)
    assert core.notifier.frames(b1.connection_id, "who")[-1]["users"] == ["alice", "bob"]
    core.clock.advance(15)
    core.service.check_presence(check)
    core.service.check_presence(check)
    assert core.notifier.frames(b1.connection_id, "presence")[-1] == {
        "type": "presence",
        "user": "alice",
        "online": False,
        "at": iso(T0 + 100),
    }
    assert core.presence(b1) == [("alice", True), ("alice", False)]


def test_a_reconnect_within_the_grace_sends_no_presence_frame() -> None:
    """Closed and reopened within the grace: nobody hears anything, and the check finds her online."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.service.disconnect(a1)
    core.clock.advance(3)
    core.connect("alice")
    core.clock.advance(20)
    [(check, _)] = scheduler.checks
    core.service.check_presence(check)
    assert core.presence(b1) == [("alice", True)]


def test_a_check_delivered_early_looks_again_when_the_grace_is_due() -> None:
    """An early check of the closing connection reschedules itself for the rest of the grace; an
    early check of another connection leaves it to the one that close scheduled."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.service.disconnect(a1)
    core.clock.advance(5)
    check = PresenceCheck.from_body(scheduler.checks[0][0].to_body())  # as the queue delivers it
    for other in ("a=", "z="):  # connection ids sorting before and after hers
        core.service.check_presence(PresenceCheck(check.endpoint, "alice", other))
    assert len(scheduler.checks) == 1
    core.service.check_presence(check)
    assert scheduler.checks[1] == (check, 10)
    assert core.presence(b1) == [("alice", True)]


def test_the_grace_counts_from_the_millisecond_of_the_close() -> None:
    """A close half a second into a second: a check 0.2 s before its grace ends looks again 0.2 s
    later, and the offline it then announces carries the close's time to the millisecond."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.clock.advance(0.5)
    core.service.disconnect(a1)
    [(check, _)] = scheduler.checks
    core.clock.advance(14.8)
    core.service.check_presence(check)
    assert scheduler.checks[1][1] == pytest.approx(0.2) and core.presence(b1) == [("alice", True)]
    core.clock.advance(0.2)
    core.service.check_presence(check)
    assert core.notifier.frames(b1.connection_id, "presence")[-1]["at"] == iso(T0 + 0.5)


def test_a_check_delivered_late_announces_offline() -> None:
    """A check that arrives well after the grace has ended announces offline, at the close's time."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.service.disconnect(a1)
    core.clock.advance(40)
    core.service.check_presence(scheduler.checks[0][0])
    assert len(scheduler.checks) == 1
    assert core.notifier.frames(b1.connection_id, "presence")[-1]["at"] == iso(T0)


def test_with_a_zero_grace_a_healing_check_is_still_scheduled_ten_seconds_on() -> None:
    """Grace 0 with a queue: offline at once, and a check 10 s later to heal a close that failed."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 0}, scheduler=scheduler)
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.service.disconnect(a1)
    assert [delay for _, delay in scheduler.checks] == [10]
    assert core.presence(b1) == [("alice", True), ("alice", False)]


def test_when_the_check_cannot_be_queued_offline_is_announced_at_once() -> None:
    """A queue that refuses the check: the grace is skipped rather than the offline lost."""
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=FakeScheduler(accepts=False))
    b1, a1 = core.connect("bob"), core.connect("alice")
    core.service.disconnect(a1)
    assert core.presence(b1) == [("alice", True), ("alice", False)]


def test_the_grace_mark_lists_the_user_at_most_five_minutes_past_the_grace() -> None:
    """With no check ever coming, `who` lists a user in grace until 300 s after the grace ends."""
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=FakeScheduler())
    core.connect("bob")
    a1 = core.connect("alice")
    core.service.disconnect(a1)
    core.clock.advance(15 + 300 - 1)
    assert core.store.online_users(now=core.clock()) == ["alice", "bob"]
    core.clock.advance(1)
    assert core.store.online_users(now=core.clock()) == ["bob"]
    assert core.store.presence["alice"].left_at_ms == ms(T0)


def test_a_close_whose_writes_failed_is_healed_by_its_check() -> None:
    """A $disconnect that scheduled its check and then failed to write: the check asks API Gateway,
    and a connection it calls gone is pruned and its user announced offline; a live one is kept."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    b1, a1, c1 = core.connect("bob"), core.connect("alice"), core.connect("carol")
    core.clock.advance(100)
    core.store.failing.add("leave")
    with pytest.raises(DependencyError):
        core.service.disconnect(a1)
    with pytest.raises(DependencyError):
        core.service.disconnect(c1)
    core.store.failing.clear()
    core.probe.alive.add(c1.connection_id)
    core.clock.advance(15)
    for check, _ in scheduler.checks:
        core.service.check_presence(check)
    assert core.probe.asked == [a1.connection_id, c1.connection_id]
    assert not core.recorded(a1) and core.recorded(c1)
    assert core.presence(b1) == [("alice", True), ("carol", True), ("alice", False)]


def test_a_close_stopped_between_its_writes_is_ended_by_its_check() -> None:
    """A presence item with neither connections nor a grace mark is taken offline by the check, now."""
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=FakeScheduler())
    b1, a1 = core.connect("bob"), core.connect("alice")
    del core.store.connections[a1.connection_id]
    core.store.presence["alice"].conns.clear()
    core.clock.advance(40)
    core.service.check_presence(PresenceCheck(core.notifier.endpoint, "alice", a1.connection_id))
    assert "alice" not in core.store.presence
    assert core.notifier.frames(b1.connection_id, "presence")[-1]["at"] == iso(T0 + 40)


def test_who_answers_the_online_users_sorted_each_once() -> None:
    """`who` lists each online user once, sorted, however many tabs they have."""
    core = Core()
    c1 = core.connect("carol")
    core.connect("alice")
    core.connect("alice")
    core.connect("bob")
    core.service.who(c1)
    assert core.notifier.frames(c1.connection_id, "who") == [
        {"type": "who", "users": ["alice", "bob", "carol"]}
    ]


# ---- sync ------------------------------------------------------------------------------------------


def _sent_at(core: Core, caller: Caller, offsets: list[float]) -> list[str]:
    """Public messages from ``caller`` at T0 + each offset; their ids."""
    for offset in offsets:
        core.clock.now = T0 + offset
        core.say(caller, f"at {offset}")
    return [m.id for m in core.store.stored()]


def test_sync_without_since_replays_the_latest_and_moves_the_cursor_to_the_settled_time() -> None:
    """The latest `limit` messages oldest first, each with its cursor; then synced at the settled time."""
    core = Core()
    b1 = core.connect("bob")
    ids = _sent_at(core, b1, [0, 1, 2])
    core.clock.now = T0 + 100
    core.notifier.posts.clear()
    core.sync(b1, limit=2)
    frames = core.notifier.frames(b1.connection_id)
    assert [f.get("id") for f in frames[:-1]] == ids[1:]
    assert [f["cursor"] for f in frames[:-1]] == [
        Cursor(after=ids[1], floor_ms=ms(T0 + 1)).encode(),
        Cursor(after=ids[2], floor_ms=ms(T0 + 2)).encode(),
    ]
    settled = ms(T0 + 100) - OVERLAP_MS
    assert frames[-1] == {
        "type": "synced",
        "cursor": Cursor(after=lowest_id_at(settled), floor_ms=settled).encode(),
        "more": False,
        "complete": True,
    }


def test_a_replayed_frame_s_floor_never_passes_the_settled_time() -> None:
    """A message stamped inside the overlap window moves a replayed cursor's floor only up to now
    minus the overlap: a write stamped earlier may still land, and a resume must not skip it."""
    core = Core()
    b1 = core.connect("bob")
    ids = _sent_at(core, b1, [0, 5])
    core.clock.now = T0 + 10
    core.notifier.posts.clear()
    since = Cursor(after=lowest_id_at(ms(T0 - 100)), floor_ms=ms(T0 - 100))
    core.sync(b1, since=since.encode())
    settled = ms(T0 + 10) - OVERLAP_MS
    cursors = [f["cursor"] for f in core.notifier.frames(b1.connection_id)]
    assert cursors == [
        Cursor(after=ids[0], floor_ms=settled).encode(),
        Cursor(after=ids[1], floor_ms=settled).encode(),
        Cursor(after=ids[1], floor_ms=settled).encode(),
    ]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_sync_with_more_keeps_the_floor_where_the_last_frame_left_it(limit: int) -> None:
    """A page cut short by `limit` says more, and its synced cursor is the last frame's."""
    core = Core()
    b1 = core.connect("bob")
    ids = _sent_at(core, b1, [0, 1, 2, 3])
    core.clock.now = T0 + 100
    core.notifier.posts.clear()
    since = Cursor(after=lowest_id_at(ms(T0 - 1)), floor_ms=ms(T0 - 1))
    core.sync(b1, since=since.encode(), limit=limit)
    *replayed, synced = core.notifier.frames(b1.connection_id)
    assert [f["id"] for f in replayed] == ids[:limit]
    assert synced["more"] is True and synced["cursor"] == replayed[-1]["cursor"]
    assert synced["cursor"] == Cursor(after=ids[limit - 1], floor_ms=ms(T0 + limit - 1)).encode()


@pytest.mark.parametrize("failing", [2, 3, 4])
def test_a_replay_post_that_fails_ends_the_sync_saying_more(failing: int) -> None:
    """A replayed frame that cannot be posted stops the replay; synced holds the last that arrived."""
    core = Core()
    b1 = core.connect("bob")
    _sent_at(core, b1, [0, 1, 2, 3, 4])
    core.clock.now = T0 + 100
    core.notifier.posts.clear()
    replayed: list[str] = []

    def fail_one(connection_id: str, frame: dict[str, Any]) -> Delivery | None:
        if frame["type"] == "message":
            replayed.append(frame["id"])
            return Delivery.FAILED if len(replayed) == failing else None
        return None

    core.notifier.on_post = fail_one
    core.sync(b1)
    *arrived, synced = core.notifier.frames(b1.connection_id)
    assert len(replayed) == failing and len(arrived) == failing - 1
    assert synced == {"type": "synced", "cursor": arrived[-1]["cursor"], "more": True, "complete": True}


def test_complete_is_false_only_for_a_cursor_older_than_the_retention() -> None:
    """A cursor whose floor is exactly retention_days old is complete; a millisecond older is not."""
    core = Core(settings={"retention_days": 2})
    b1 = core.connect("bob")
    oldest = ms(T0) - 2 * 86400 * 1000
    for floor, complete in ((oldest + 1, True), (oldest, True), (oldest - 1, False)):
        core.sync(b1, since=Cursor(after=lowest_id_at(floor), floor_ms=floor).encode())
        assert core.notifier.frames(b1.connection_id, "synced")[-1]["complete"] is complete


def test_a_cursor_from_more_than_a_minute_ahead_is_refused() -> None:
    """A cursor stamped up to 60 s ahead of the clock is taken; one further ahead is invalid."""
    core = Core()
    b1 = core.connect("bob")
    ahead = ms(T0) + 60_000
    core.sync(b1, since=Cursor(after=lowest_id_at(ahead), floor_ms=ahead).encode())
    assert len(core.notifier.frames(b1.connection_id, "synced")) == 1
    with pytest.raises(InvalidMessage):
        core.sync(b1, since=Cursor(after=lowest_id_at(ahead + 1), floor_ms=0).encode())
    with pytest.raises(InvalidMessage):
        core.sync(b1, since=Cursor(after=lowest_id_at(ahead + 1), floor_ms=ahead + 1).encode())


def test_sync_replays_only_what_the_user_may_read() -> None:
    """The public feed and the user's own private feed, merged in id order; nobody else's."""
    core = Core()
    a1, b1 = core.connect("alice"), core.connect("bob")
    core.connect("carol")
    core.say(a1, "public")
    core.clock.advance(1)
    core.say(a1, "for bob", to="bob")
    core.clock.advance(1)
    core.say(a1, "for carol", to="carol")
    core.notifier.posts.clear()
    core.sync(b1)
    assert core.texts(b1) == ["public", "for bob"]


# ---- budgets -----------------------------------------------------------------------------------------


def test_without_a_limiter_every_frame_is_admitted() -> None:
    """No budgets configured: admit says yes and posts nothing."""
    core = Core()
    a1 = core.connect("alice")
    assert core.service.admit(a1, "who", None) is True
    assert core.notifier.posts == []


def test_a_request_past_its_budget_is_answered_rate_limited_and_a_flooder_closed_once() -> None:
    """Refused frames get rate_limited with the wait and the frame's clientMsgId; the refusal that
    reaches flood_close_after closes the connection, and later ones post nothing."""
    core = Core(budgets={"sendmessage": 4}, flood_close_after=3)
    a1 = core.connect("alice")
    raw = json.dumps({"action": "sendmessage", "text": "x", "clientMsgId": "r-1"})
    assert core.service.admit(a1, "sendmessage", raw) is True
    assert [core.service.admit(a1, "sendmessage", raw) for _ in range(4)] == [False] * 4
    errors = core.notifier.frames(a1.connection_id, "error")
    assert (
        errors
        == [
            {
                "type": "error",
                "code": "rate_limited",
                "message": "too many sendmessage requests; try again in 15 s",
                "clientMsgId": "r-1",
            }
        ]
        * 3
    )
    assert core.closer.closed == [a1.connection_id]


def test_a_flooder_is_closed_only_after_its_earlier_refusals_are_posted() -> None:
    """A flood's frames run side by side: the refusal that reaches flood_close_after waits for an
    earlier refusal still being posted, so the client hears every refusal before the close."""
    core = Core(budgets={"who": 4}, flood_close_after=3)
    a1 = core.connect("alice")
    assert core.service.admit(a1, "who", None) is True
    first_post_started, release_first_post = threading.Event(), threading.Event()

    def hold_the_first_refusal(connection_id: str, frame: dict[str, Any]) -> None:
        if frame["type"] == "error" and not first_post_started.is_set():
            first_post_started.set()
            release_first_post.wait(timeout=10)

    core.notifier.on_post = hold_the_first_refusal
    slow = threading.Thread(target=core.service.admit, args=(a1, "who", None))
    slow.start()
    assert first_post_started.wait(timeout=5)
    closing = threading.Thread(target=lambda: [core.service.admit(a1, "who", None) for _ in range(2)])
    closing.start()
    closing.join(timeout=0.2)
    assert closing.is_alive() and core.closer.closed == []  # waiting for the first refusal
    release_first_post.set()
    slow.join(timeout=5)
    closing.join(timeout=5)
    assert len(core.notifier.frames(a1.connection_id, "error")) == 3
    assert core.closer.closed == [a1.connection_id]


def test_the_wait_a_refusal_names_is_at_least_a_second() -> None:
    """A wait under half a second is rounded up to 1 s, never to 0."""
    core = Core(budgets={"who": 4})
    a1 = core.connect("alice")
    assert core.service.admit(a1, "who", None) is True
    core.clock.advance(14.6)
    assert core.service.admit(a1, "who", None) is False
    [error] = core.notifier.frames(a1.connection_id, "error")
    assert error["message"] == "too many who requests; try again in 1 s" and error["clientMsgId"] is None


def test_a_route_without_a_budget_is_always_admitted() -> None:
    """A route with no budget is never refused, however often."""
    core = Core(budgets={"who": 4})
    a1 = core.connect("alice")
    assert all(core.service.admit(a1, "ping", None) for _ in range(10))


# ---- the small routes --------------------------------------------------------------------------------


def test_a_bare_ping_gets_pong_and_anything_unroutable_an_error() -> None:
    """The text `ping` and the ping action get pong; other frames no route matched are refused."""
    core = Core()
    a1 = core.connect("alice")
    core.service.default(a1, " ping\n")
    core.service.ping(a1)
    assert core.notifier.frames(a1.connection_id) == [{"type": "pong"}, {"type": "pong"}]
    with pytest.raises(InvalidJson):
        core.service.default(a1, "pong")
    with pytest.raises(UnknownAction):
        core.service.default(a1, '{"action": "dance"}')


def test_a_sync_of_an_empty_history_settles_at_once() -> None:
    """Nothing stored: no frame but synced, complete, its cursor at the settled time."""
    core = Core()
    b1 = core.connect("bob")
    core.sync(b1)
    settled = ms(T0) - OVERLAP_MS
    assert core.notifier.frames(b1.connection_id) == [
        {
            "type": "synced",
            "cursor": Cursor(after=lowest_id_at(settled), floor_ms=settled).encode(),
            "more": False,
            "complete": True,
        }
    ]


def test_a_caller_is_a_value() -> None:
    """Two callers with the same connection and user are equal and hash alike (frozen)."""
    assert {Caller("c1=", "alice"), Caller("c1=", "alice")} == {Caller("c1=", "alice")}


# ---- what is counted and logged ----------------------------------------------------------------------


def _counted(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


def test_each_rule_counts_what_it_did() -> None:
    """Stored messages, deliveries, pruned and unprunable connections, refusals, flooders and healed
    closes each publish their metric, with the number of things they are about."""
    core = Core(budgets={"who": 4}, flood_close_after=1)
    a1, b1, c1 = core.connect("alice"), core.connect("bob"), core.connect("carol")
    core.notifier.gone.add(c1.connection_id)
    core.clock.advance(31)
    metrics.clear_metrics()
    core.say(a1, "counted")
    assert _counted("MessagesStored") == [1]
    assert _counted("Deliveries") == [2, 2]  # the message to two live sockets, then carol's offline
    assert _counted("StaleConnectionsPruned") == [1]
    core.notifier.gone.add(b1.connection_id)
    core.clock.advance(31)
    core.store.failing.add("remove_connection")
    core.say(a1, "again")
    assert _counted("PruneFailures") == [1]
    core.store.failing.clear()
    assert [core.service.admit(a1, "who", None) for _ in range(2)] == [True, False]
    assert _counted("RequestsRateLimited") == [1] and _counted("FloodingConnectionsClosed") == [1]


def test_a_healed_close_is_counted() -> None:
    """A presence check that prunes a connection API Gateway calls gone counts one PresenceHealed."""
    scheduler = FakeScheduler()
    core = Core(settings={"presence_grace_seconds": 15}, scheduler=scheduler)
    a1 = core.connect("alice")
    core.clock.advance(100)
    core.store.failing.add("leave")
    with pytest.raises(DependencyError):
        core.service.disconnect(a1)
    core.store.failing.clear()
    metrics.clear_metrics()
    core.clock.advance(15)
    core.service.check_presence(scheduler.checks[0][0])
    assert _counted("PresenceHealed") == [1]


def test_a_fan_out_s_duration_is_counted_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """FanoutDuration is the wall time the posts of one delivery took, in milliseconds."""
    core = Core()
    b1 = core.connect("bob")
    readings = iter([100.0, 250.25])
    monkeypatch.setattr(time, "perf_counter", lambda: next(readings))
    metrics.clear_metrics()
    core.service.deliver([ConnectionRecord(b1.connection_id, "bob")], json.dumps({"type": "pong"}))
    assert _counted("FanoutDuration") == [150_250.0]


def test_failed_posts_are_logged_and_a_clean_fan_out_is_not(caplog: pytest.LogCaptureFixture) -> None:
    """A delivery with posts that failed after their retries logs how many; one without logs nothing."""
    core = Core()
    b1, c1 = core.connect("bob"), core.connect("carol")
    core.say(b1, "fine")
    assert not [r for r in caplog.records if r.getMessage() == "some deliveries failed"]
    core.notifier.failing.add(c1.connection_id)
    core.say(b1, "not for carol")
    [record] = [r for r in caplog.records if r.getMessage() == "some deliveries failed"]
    assert (record.levelname, record.__dict__["failed"]) == ("WARNING", 1)
