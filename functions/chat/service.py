"""The chat's use cases: one method per route, over a store, a notifier and a user directory.

Rules about *what* a frame says live in ``chat.protocol``; this module decides *who* gets it and in
which order things happen: a message is stored, then delivered (or handed to fan-out workers when the
audience is large), then acknowledged.

Its collaborators are the typed interfaces of ``chat.ports``: the DynamoDB store, the management-API
notifier and the rest are wired in by ``chat.wiring``; the fast tests pass in-memory fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chat import cursor, limits, protocol
from chat.config import Settings
from chat.cursor import Cursor, IdGenerator, id_time_ms
from chat.errors import ChatError, DependencyError, InvalidMessage, RateLimited, UnknownUser
from chat.grace import PresenceCheck
from chat.limits import Strike
from chat.notifier import Delivery
from chat.observability import MetricUnit, logger, metrics
from chat.ports import Closer, Directory, Dispatcher, Limiter, Poster, Probe, Scheduler, Store
from chat.store import PUBLIC_FEED, ConnectionRecord, SaveResult, StoredMessage, user_feed

# A resent message whose first fan-out never completed is delivered again only once the first
# invocation is surely over (a route Lambda runs 30 s at most): a crash, not a slow fan-out.
_REDELIVER_AFTER_MS = 60_000
# A connection whose $connect is still running gets 410 from API Gateway, like a dead one; one
# recorded this recently is not pruned on a 410 ($connect itself may take up to 29 s).
_HANDSHAKE_GRACE_SECONDS = 30
# Presence changes found while delivering presence changes: stop after a few rounds.
_PRUNE_ROUNDS = 3
# With no grace, a $disconnect still schedules a check this much later: it heals a close whose
# own writes failed (see ChatService.check_presence).
_HEAL_DELAY_SECONDS = 10
# A grace mark lists the user in `who` at most this long past the grace if no check ever ends it.
_GRACE_HOLD_SECONDS = 300
# A flooder's connection is closed once its earlier refusals are posted, or after this long (a post
# is bounded by its own timeouts; this only keeps a stuck one from holding the close).
_TELL_BEFORE_CLOSE_S = 5.0


@dataclass(frozen=True)
class Caller:
    """The connection a route call came from and the user its token proved."""

    connection_id: str
    username: str


class ChatService:
    def __init__(
        self,
        *,
        store: Store,
        notifier: Poster,
        directory: Directory,
        settings: Settings,
        dispatcher: Dispatcher | None = None,
        limiter: Limiter | None = None,
        closer: Closer | None = None,
        scheduler: Scheduler | None = None,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.time,
        ids: IdGenerator | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.directory = directory
        self.dispatcher = dispatcher
        self.limiter = limiter
        self.closer = closer
        self.scheduler = scheduler
        self.probe = probe
        self.settings = settings
        self.clock = clock
        self.ids = ids or IdGenerator()
        self.overlap_ms = settings.sync_overlap_seconds * 1000

    # ---- budgets -------------------------------------------------------------------------------

    def admit(self, caller: Caller, route: str, raw: str | None) -> bool:
        """Spend the caller's budget for one frame on ``route``, before any other work; when it is
        spent, answer ``rate_limited`` and return False. A connection that keeps flooding after
        being told is closed. ``$connect`` and ``$disconnect`` never come here."""
        if self.limiter is None:
            return True
        verdict = self.limiter.admit(caller.username, route, limits.cost_of(route, raw))
        if verdict.admitted:
            return True
        metrics.add_metric(name="RequestsRateLimited", unit=MetricUnit.Count, value=1)
        strike = self.limiter.strike(caller.connection_id)
        if strike is Strike.CLOSED_ALREADY:
            return False  # posting to it would only earn a 410 and a prune
        wait = max(1, round(verdict.retry_after_s))
        message = f"too many {route} requests; try again in {wait} s"
        try:
            self.report_error(caller, RateLimited(message, client_msg_id=protocol.client_msg_id_of(raw)))
        finally:
            self.limiter.told(caller.connection_id)
        if strike is Strike.TELL_AND_CLOSE and self.closer is not None:
            # The refusals before this one may still be on their way: close after they land.
            self.limiter.wait_until_told(caller.connection_id, timeout_s=_TELL_BEFORE_CLOSE_S)
            logger.warning("closing a connection that keeps flooding", username=caller.username, route=route)
            metrics.add_metric(name="FloodingConnectionsClosed", unit=MetricUnit.Count, value=1)
            self.closer.close(caller.connection_id)
        return False

    # ---- routes --------------------------------------------------------------------------------

    def connect(self, caller: Caller) -> None:
        """Record the connection; tell everyone else when the user came online with it."""
        self.directory.remember(caller.username)
        connection = ConnectionRecord(caller.connection_id, caller.username)
        now = self.clock()
        if self.store.add_connection(connection, now=now, ttl_seconds=self.settings.connection_ttl_seconds):
            # The new socket cannot be posted to until $connect returns: everyone else hears it.
            frame = protocol.presence_frame(caller.username, True, at=_iso(now))
            self._broadcast(frame, skip={caller.connection_id})

    def disconnect(self, caller: Caller) -> None:
        """Forget the connection. When it was the user's last, the presence grace starts: a delayed
        check announces them offline unless they reconnect first. Without a grace (or when the
        check cannot be queued) they are announced offline now.

        The check is queued before anything is written, so that a close whose writes fail is still
        looked at again (and healed) once the grace has passed.
        """
        now = self.clock()
        connection = ConnectionRecord(caller.connection_id, caller.username)
        grace = self.presence_grace_seconds
        scheduled = self._schedule_check(caller, delay_seconds=grace or _HEAL_DELAY_SECONDS)
        if grace and scheduled:
            self.store.leave(
                connection, left_at_ms=int(now * 1000), hold_until=now + grace + _GRACE_HOLD_SECONDS
            )
            return
        if self.store.remove_connection(connection):
            self._announce_offline(caller.username, at=now)

    @property
    def presence_grace_seconds(self) -> int:
        """The grace in force: none without a queue to deliver the checks."""
        return self.settings.presence_grace_seconds if self.scheduler is not None else 0

    def check_presence(self, check: PresenceCheck) -> None:
        """A delayed presence check (at least once, maybe late): decide from the state as it is now.

        - the connection that scheduled it is still recorded: its $disconnect failed to write. Ask
          API Gateway; if it is gone, prune it (and announce the user offline if it was the last);
        - the user's grace has run out with no new connection: announce them offline, once (the
          conditional delete lets one check win; a reconnect in between makes it fail);
        - the grace has not run out yet (a check delivered early): look again when it has.
        """
        now = self.clock()
        record = self.store.presence_of(check.username)
        if record is None:
            return  # offline already
        if check.connection_id in record.connection_ids:
            self._heal(ConnectionRecord(check.connection_id, check.username))
            return
        if record.connection_ids:
            return  # online with other connections
        if record.left_by is None:  # a close that stopped between its two writes
            if self.store.end_grace(check.username, left_by=None):
                self._announce_offline(check.username, at=now)
            return
        assert record.left_at_ms is not None
        due = record.left_at_ms / 1000 + self.settings.presence_grace_seconds
        if now < due:
            if record.left_by == check.connection_id:  # early: look again when it is due
                self._schedule_check_of(check, delay_seconds=due - now)
            return  # else the check that close scheduled will come
        if self.store.end_grace(check.username, left_by=record.left_by):
            self._announce_offline(check.username, at=record.left_at_ms / 1000)

    def _heal(self, suspect: ConnectionRecord) -> None:
        if self.probe is None or self.probe.exists(suspect.connection_id):
            return
        logger.info("healing a connection whose $disconnect did not complete")
        metrics.add_metric(name="PresenceHealed", unit=MetricUnit.Count, value=1)
        self._prune([suspect])

    def _schedule_check(self, caller: Caller, *, delay_seconds: float) -> bool:
        check = PresenceCheck(self.notifier.endpoint, caller.username, caller.connection_id)
        return self._schedule_check_of(check, delay_seconds=delay_seconds)

    def _schedule_check_of(self, check: PresenceCheck, *, delay_seconds: float) -> bool:
        return self.scheduler is not None and self.scheduler.schedule(check, delay_seconds=delay_seconds)

    def _announce_offline(self, username: str, *, at: float) -> None:
        self._broadcast(protocol.presence_frame(username, False, at=_iso(at)))

    def send_message(self, caller: Caller, body: dict[str, Any], frame_id: str | None = None) -> None:
        """Store, deliver, then acknowledge a public or private message.

        Stored first, so that nothing anyone has seen can be lost; delivered before the ack, so that
        a client that waits for each ack sees its messages arrive everywhere in the order it sent
        them (a long fan-out is handed to worker invocations, so the ack still comes at once); the
        fan-out is then recorded as complete, so that a resend delivers nothing again.

        ``frame_id`` is API Gateway's id for the incoming frame: when the client gave no clientMsgId
        it still makes a repeated delivery of the same invocation store nothing new.
        """
        request = protocol.parse_send(body)
        now = self.clock()
        self._check_recipient(caller, request)
        message = StoredMessage(
            id=self.ids.new_id(int(now * 1000)),
            sender=caller.username,
            to=request.to,
            text=request.text,
            sent_at=_iso(now),
            client_msg_id=request.client_msg_id,
        )
        key = request.client_msg_id or (f"frame:{frame_id}" if frame_id else None)
        expires_at = int(now) + self.settings.retention_days * 86400
        saved = self.store.save_message(message, idempotency_key=key, expires_at=expires_at)
        ack = protocol.ack_frame(
            message_id=saved.message_id,
            cursor=Cursor.for_live(saved.message_id, self.overlap_ms),
            client_msg_id=request.client_msg_id,
            duplicate=saved.duplicate,
        )
        if saved.duplicate:
            self._heal_lost_fan_out(caller, saved, key, now_ms=int(now * 1000))
            self._reply(caller, ack)
            return
        metrics.add_metric(name="MessagesStored", unit=MetricUnit.Count, value=1)
        self._deliver_message(caller, message)
        self._reply(caller, ack)
        if key is not None:
            self.store.mark_delivered(caller.username, key)

    def _heal_lost_fan_out(self, caller: Caller, saved: SaveResult, key: str | None, *, now_ms: int) -> None:
        """Deliver a resent message whose first invocation stored it and then died."""
        original = saved.undelivered
        if original is None or key is None or now_ms - id_time_ms(original.id) < _REDELIVER_AFTER_MS:
            return
        logger.info("delivering a message whose first fan-out never completed", message_id=original.id)
        self._deliver_message(caller, original)
        self.store.mark_delivered(caller.username, key)

    def _deliver_message(self, caller: Caller, message: StoredMessage) -> None:
        """A live message to its audience: a public one to every open connection (the sender's
        own included), a private one to every connection of ``to`` and every *other* one of the
        sender."""
        frame = self._message_frame(message, Cursor.for_live(message.id, self.overlap_ms))
        if message.to is None:
            self._broadcast(frame)
            return
        recipients = self.store.connections_of(message.to, message.sender)
        others = [c for c in recipients if c.connection_id != caller.connection_id]
        self._deliver(others, protocol.encode(frame))

    def sync(self, caller: Caller, body: dict[str, Any]) -> None:
        """Replay, oldest first, what this user may have missed; then say where that left them.

        Version 1 gets one ``message`` frame per message; ``batch: true`` gets them packed into
        ``messages`` frames of up to 32 KB. Either way each message carries its own cursor, safe to
        resume from if the socket drops mid-replay."""
        request = protocol.parse_sync(body)
        now = self.clock()
        settled = cursor.settled_ms(int(now * 1000), self.overlap_ms)
        messages, held, more, complete = self._replay_page(caller, request, now)
        positions = cursor.replay_positions(held, [m.id for m in messages], settled)
        objects = [message_fields_of(m, at) for m, at in zip(messages, positions, strict=True)]
        sent = 0
        for frame, count in protocol.replay_frames(objects, batch=request.batch):
            outcome = self.notifier.send(caller.connection_id, frame)
            if outcome is Delivery.GONE:
                self._prune([ConnectionRecord(caller.connection_id, caller.username)])
                return
            if outcome is Delivery.FAILED:
                # Stop here and say so: the client syncs again from what it did receive.
                resume = positions[sent - 1] if sent else held
                self._reply(caller, protocol.synced_frame(resume, more=True, complete=complete))
                return
            sent += count
        if positions:
            held = positions[-1]
        if not more:
            held = cursor.settle(held, settled)
        self._reply(caller, protocol.synced_frame(held, more=more, complete=complete))

    def _replay_page(
        self, caller: Caller, request: protocol.SyncRequest, now: float
    ) -> tuple[list[StoredMessage], Cursor, bool, bool]:
        """The messages a sync replays, the cursor the client holds before them, and the synced
        frame's ``more`` and ``complete``."""
        feeds = [PUBLIC_FEED, user_feed(caller.username)]
        now_ms = int(now * 1000)
        since = request.since
        if since is None:
            messages = self.store.latest(feeds, limit=request.limit, now=now)
            settled = cursor.settled_ms(now_ms, self.overlap_ms)
            return (
                messages,
                cursor.held_before_latest(messages[0].id if messages else None, settled),
                False,
                True,
            )
        if cursor.is_from_future(since, now_ms):
            raise InvalidMessage("'since' is a cursor from the future")
        page = self.store.read_since(
            feeds, floor_ms=since.floor_ms, after=since.after, limit=request.limit, now=now
        )
        return (
            page.messages,
            since,
            page.more,
            cursor.is_complete(since, now_ms, self.settings.retention_days),
        )

    def who(self, caller: Caller) -> None:
        self._reply(caller, protocol.who_frame(self.store.online_users(now=self.clock())))

    def ping(self, caller: Caller) -> None:
        self._reply(caller, protocol.pong_frame())

    def default(self, caller: Caller, raw: str | None) -> None:
        """Frames no route matched: the bare text ``ping`` gets ``pong``, anything else an error."""
        if protocol.is_bare_ping(raw):
            self.ping(caller)
            return
        protocol.reject_unroutable(raw)

    def report_error(self, caller: Caller, error: ChatError) -> None:
        self._reply(caller, protocol.error_frame(error.code, error.message, error.client_msg_id))

    # ---- messages ------------------------------------------------------------------------------

    def _check_recipient(self, caller: Caller, request: protocol.SendRequest) -> None:
        if request.to is None:
            return
        if request.to == caller.username:
            raise InvalidMessage("a private message needs another user", client_msg_id=request.client_msg_id)
        if not self.directory.exists(request.to):
            raise UnknownUser(f"there is no user {request.to!r}", client_msg_id=request.client_msg_id)

    def _message_frame(self, message: StoredMessage, cursor: Cursor) -> dict[str, Any]:
        return protocol.message_frame(message_fields_of(message, cursor))

    # ---- delivery: every post goes out through _reply, _broadcast or _deliver ---------------

    def _reply(self, caller: Caller, frame: dict[str, Any]) -> None:
        """Post one frame to the caller; prune its connection when API Gateway says it is gone."""
        if self.notifier.send(caller.connection_id, protocol.encode(frame)) is Delivery.GONE:
            self._prune([ConnectionRecord(caller.connection_id, caller.username)])

    def _broadcast(self, frame: dict[str, Any], skip: Collection[str] = ()) -> None:
        """Post one frame to every open connection but ``skip``, a page of the connections table at
        a time. A page larger than one chunk goes, chunk by chunk, to worker invocations when a
        worker function is set; what no worker took is delivered here."""
        encoded = protocol.encode(frame)
        for page in self.store.all_connections():
            targets = [c for c in page if c.connection_id not in skip]
            self._deliver(self._hand_to_workers(targets, encoded), encoded)

    def _hand_to_workers(self, targets: list[ConnectionRecord], frame: str) -> list[ConnectionRecord]:
        """Dispatch a page too large for one invocation in chunks; the connections left to post here."""
        chunk = self.settings.fanout_chunk_size
        if self.dispatcher is None or len(targets) <= chunk:
            return targets
        left: list[ConnectionRecord] = []
        for start in range(0, len(targets), chunk):
            batch = targets[start : start + chunk]
            if not self.dispatcher.dispatch(self.notifier.endpoint, frame, batch):
                left += batch  # not handed over: deliver it here
        return left

    def _deliver(self, connections: Sequence[ConnectionRecord], frame: str) -> None:
        """Post one encoded frame to these connections, then prune the ones found gone, together.

        A failed prune is logged, not raised: the frames are posted, and failing now would make a
        fan-out worker's chunk run (and post) again. A connection left unpruned is met again by a
        later post, or expires.
        """
        gone = self._post(connections, frame)
        try:
            self._prune(gone)
        except DependencyError as exc:
            logger.warning("could not prune gone connections", error=str(exc), gone=len(gone))
            metrics.add_metric(name="PruneFailures", unit=MetricUnit.Count, value=1)

    # A fan-out worker's whole job (chat.handlers.fanout): one frame to one chunk of connections.
    deliver = _deliver

    def _post(self, connections: Sequence[ConnectionRecord], frame: str) -> list[ConnectionRecord]:
        """Post one frame to each connection, counting and timing it; the connections found gone."""
        started = time.perf_counter()
        report = self.notifier.send_many([c.connection_id for c in connections], frame)
        metrics.add_metric(name="Deliveries", unit=MetricUnit.Count, value=report.delivered)
        metrics.add_metric(
            name="FanoutDuration", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        if report.failed:
            logger.warning("some deliveries failed", failed=len(report.failed))
        gone = set(report.gone)
        return [c for c in connections if c.connection_id in gone]

    def _prune(self, gone: list[ConnectionRecord]) -> None:
        """Forget connections API Gateway says are gone, except those still inside their handshake,
        and announce the users who went offline with them.

        The announcements are posted here, not through ``_broadcast``: connections found gone by
        them are collected and pruned in the next round (a few rounds at most), instead of each
        announcement pruning, and announcing, recursively.
        """
        for _ in range(_PRUNE_ROUNDS):
            if not gone:
                return
            metrics.add_metric(name="StaleConnectionsPruned", unit=MetricUnit.Count, value=len(gone))
            cutoff = self.clock() - _HANDSHAKE_GRACE_SECONDS
            offline = [c.username for c in gone if self.store.remove_connection(c, connected_before=cutoff)]
            gone = []
            for username in offline:
                frame = protocol.encode(protocol.presence_frame(username, False, at=_iso(self.clock())))
                for page in self.store.all_connections():
                    gone += self._post(page, frame)


def _iso(epoch_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-27T01:02:03.456Z."""
    return (
        datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def message_fields_of(message: StoredMessage, cursor: Cursor) -> dict[str, Any]:
    """A stored message as the protocol lists it: a ``message`` frame's fields without ``type``
    (inside ``messages``, ``history`` and ``inbox`` frames)."""
    return protocol.message_fields(
        message_id=message.id,
        cursor=cursor,
        sender=message.sender,
        to=message.to,
        text=message.text,
        sent_at=message.sent_at,
        client_msg_id=message.client_msg_id,
    )
