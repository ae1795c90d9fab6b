"""The conversation actions of protocol version 1.1: ``history``, ``read``, ``typing``, ``inbox``.

A conversation is the public one or the private one between the caller and one other user. These
use cases sit beside ``ChatService`` and share its store, notifier, directory, settings and clock;
what a frame says is ``chat.protocol``'s business, how it is stored ``chat.store``'s:

- a conversation's history pages by key: the ``public`` feed, or a private conversation's two
  directions (``dm#<from>#<to>``), written in the message's own send transaction;
- the inbox is one Query of the caller's ``inbox#<user>`` partition (last message and both read
  positions per partner), plus the public feed's newest message and at most one bounded count
  (to 100) per conversation with something after the caller's read position;
- a read position never moves backwards (one conditional write); typing is not stored, only a
  3-second throttle item per sender and recipient that expires.
"""

from __future__ import annotations

from typing import Any, cast

from chat import protocol
from chat.cursor import Cursor, id_time_ms
from chat.errors import InvalidMessage, UnknownUser
from chat.observability import MetricUnit, metrics
from chat.ports import ConversationStore
from chat.service import Caller, ChatService, message_fields_of
from chat.store import PUBLIC_FEED, ConnectionRecord, InboxEntry, StoredMessage, dm_feed

# A typing notice is forwarded at most once per sender and recipient in this window.
TYPING_WINDOW_MS = 3000
# Unread counts stop here: 100 means "100 or more".
UNREAD_CAP = 100
# Two Lambdas' clocks may differ a little: an id stamped by one may look a moment ahead to another.
_CLOCK_SKEW_MS = 1000


class Conversations:
    """The version 1.1 conversation use cases, one method per route, over a ``ChatService``."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        # The service holds the store as the core's narrower interface; it is the DynamoDB store,
        # which keeps the conversations too (chat.wiring).
        self.store = cast(ConversationStore, service.store)

    # ---- routes --------------------------------------------------------------------------------

    def history(self, caller: Caller, body: dict[str, Any]) -> None:
        """Older messages of one conversation, as many as fit one frame, oldest first."""
        request = protocol.parse_history(body)
        self._check_partner(caller, request.partner, "with")
        feeds = (
            [PUBLIC_FEED]
            if request.partner is None
            else [dm_feed(caller.username, request.partner), dm_feed(request.partner, caller.username)]
        )
        page = self.store.older(feeds, before=request.before, limit=request.limit, now=self.service.clock())
        objects = [self._message_object(message) for message in page.messages]
        self._reply(caller, protocol.fit_history(request.partner, objects, more=page.more))

    def read(self, caller: Caller, body: dict[str, Any]) -> None:
        """Record the caller's read position; tell their other devices and, privately, the partner.
        A position at or before the stored one changes nothing and sends nothing."""
        request = protocol.parse_read(body)
        now = self.service.clock()
        if id_time_ms(request.up_to) > now * 1000 + _CLOCK_SKEW_MS:
            raise InvalidMessage("'upTo' lies in the future")
        self._check_partner(caller, request.partner, "with")
        expires_at = int(now) + self.service.settings.retention_days * 86400
        if not self.store.advance_read(
            caller.username, request.partner, request.up_to, expires_at=expires_at
        ):
            return
        users = [caller.username] if request.partner is None else [caller.username, request.partner]
        recipients = [c for c in self.store.connections_of(*users) if c.connection_id != caller.connection_id]
        frame = protocol.read_frame(caller.username, request.partner, request.up_to)
        self.service.deliver(recipients, protocol.encode(frame))

    def typing(self, caller: Caller, body: dict[str, Any]) -> None:
        """Tell every connection of ``to`` that the caller is typing, at most once in 3 seconds;
        the rest are dropped without an answer."""
        request = protocol.parse_typing(body)
        self._check_partner(caller, request.to, "to")
        now_ms = int(self.service.clock() * 1000)
        if not self.store.claim_typing(
            caller.username, request.to, now_ms=now_ms, window_ms=TYPING_WINDOW_MS
        ):
            metrics.add_metric(name="TypingDropped", unit=MetricUnit.Count, value=1)
            return
        frame = protocol.encode(protocol.typing_frame(caller.username))
        self.service.deliver(self.store.connections_of(request.to), frame)

    def inbox(self, caller: Caller) -> None:
        """The caller's conversations, newest last message first, the public one always listed."""
        now = self.service.clock()
        entries = {entry.partner: entry for entry in self.store.inbox(caller.username, now=now)}
        public = entries.pop(None, InboxEntry(partner=None))
        newest = self.store.latest([PUBLIC_FEED], limit=1, now=now)
        rows = [self._row(caller, InboxEntry(None, newest[0] if newest else None, public.read_up_to), now)]
        # A partner known only by read positions (their messages expired) has no conversation left.
        # The newest 99 others are listed, each counted only when something follows the position.
        private = sorted((e for e in entries.values() if e.last is not None), key=_last_id, reverse=True)
        rows += [self._row(caller, entry, now) for entry in private[: protocol.INBOX_MAX_CONVERSATIONS - 1]]
        self._reply(caller, protocol.inbox_frame(rows))

    # ---- parts ---------------------------------------------------------------------------------

    def _row(self, caller: Caller, entry: InboxEntry, now: float) -> protocol.Conversation:
        return protocol.Conversation(
            partner=entry.partner,
            last=self._message_object(entry.last) if entry.last else None,
            unread=self._unread(caller, entry, now),
            read_up_to=entry.read_up_to,
            their_read_up_to=entry.their_read_up_to if entry.partner is not None else None,
        )

    def _unread(self, caller: Caller, entry: InboxEntry, now: float) -> int:
        """Messages from others after the caller's position, to 100. No count is needed when the
        last message is at or before the position."""
        if entry.last is None or (entry.read_up_to is not None and entry.last.id <= entry.read_up_to):
            return 0
        if entry.partner is None:
            return self.store.count_after(
                PUBLIC_FEED, after=entry.read_up_to, cap=UNREAD_CAP, now=now, not_from=caller.username
            )
        incoming = dm_feed(entry.partner, caller.username)
        return self.store.count_after(incoming, after=entry.read_up_to, cap=UNREAD_CAP, now=now)

    def _check_partner(self, caller: Caller, partner: str | None, field: str) -> None:
        if partner is None:
            return
        if partner == caller.username:
            raise InvalidMessage(f"'{field}' must be another user")
        if not self.service.directory.exists(partner):
            raise UnknownUser(f"there is no user {partner!r}")

    def _message_object(self, message: StoredMessage) -> dict[str, Any]:
        return message_fields_of(message, Cursor.for_live(message.id, self.service.overlap_ms))

    def _reply(self, caller: Caller, frame: dict[str, Any]) -> None:
        self.service.deliver(
            [ConnectionRecord(caller.connection_id, caller.username)], protocol.encode(frame)
        )


def _last_id(entry: InboxEntry) -> str:
    return entry.last.id if entry.last is not None else ""
