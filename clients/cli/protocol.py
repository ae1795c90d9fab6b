"""The chat protocol's client side without I/O: what to send, and what an incoming frame means.

``ChatState`` holds what survives a reconnect — the cursor, the ids already seen, the sends not yet
acknowledged — and turns each incoming frame into events for the UI plus the frames to answer with.
``session.ChatSession`` is the asyncio adapter that moves the frames; tests drive this class alone.
``Pager`` (where ``/history`` goes on from) and ``ReadMarks`` (what to report with ``read``) follow
what a UI has shown, so the UIs own them.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Frame = dict[str, Any]

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
HISTORY_LIMIT_MAX = 500
# Messages per /history page (the protocol allows 1-100).
HISTORY_PAGE = 20
# Error codes that say "not now" rather than "never": a refused sync is asked again after a while.
RETRY_LATER_CODES = ("rate_limited", "internal_error")
# Sent well inside API Gateway's 10-minute idle timeout (the protocol asks for at most 9).
PING_INTERVAL_SECONDS = 5 * 60


def normalize_username(raw: str) -> str | None:
    """The lower-cased username, or None when it breaks the protocol's username rule."""
    username = raw.strip().lower()
    return username if raw.isascii() and USERNAME_RE.fullmatch(username) else None


def new_client_msg_id() -> str:
    """A random clientMsgId: 22 characters of ``A-Za-z0-9_-``, so the server can deduplicate resends."""
    return secrets.token_urlsafe(16)


def sendmessage_frame(text: str, to: str | None, client_msg_id: str) -> Frame:
    frame: Frame = {"action": "sendmessage", "text": text, "clientMsgId": client_msg_id}
    if to is not None:
        frame["to"] = to
    return frame


def sync_frame(since: str | None, limit: int | None = None, *, batch: bool = False) -> Frame:
    frame: Frame = {"action": "sync"}
    if since is not None:
        frame["since"] = since
    if limit is not None:
        frame["limit"] = limit
    if batch:
        frame["batch"] = True
    return frame


def history_frame(partner: str | None, before: str | None, limit: int = HISTORY_PAGE) -> Frame:
    """Ask for a page of one conversation's older messages (protocol 1.1's ``history``)."""
    frame: Frame = {"action": "history", "with": partner, "limit": limit}
    if before is not None:
        frame["before"] = before
    return frame


def read_frame(partner: str | None, up_to: str) -> Frame:
    return {"action": "read", "with": partner, "upTo": up_to}


def typing_frame(to: str) -> Frame:
    return {"action": "typing", "to": to}


def conversation_of(message: Frame, me: str) -> str | None:
    """The conversation a message belongs to: None for public, else the other user of the DM."""
    sender, recipient = message.get("from"), message.get("to")
    if recipient is None:
        return None
    return str(recipient if sender == me else sender)


WHO_FRAME: Frame = {"action": "who"}
PING_FRAME: Frame = {"action": "ping"}
INBOX_FRAME: Frame = {"action": "inbox"}


# What a user types, parsed. The UIs act on these; nothing here sends anything.
@dataclass(frozen=True)
class Say:
    text: str
    to: str | None = None


@dataclass(frozen=True)
class Who:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class History:
    """Page back through one conversation: the public one (``partner`` None) or the DM with a user."""

    partner: str | None = None


@dataclass(frozen=True)
class Invalid:
    reason: str


Command = Say | Who | Quit | Help | History | Invalid

USAGE = (
    "plain text is public · /msg USER TEXT is private · /history [USER] shows older messages"
    " · /who lists who is online · /quit leaves"
)


def parse_input(line: str) -> Command | None:
    """The command a typed line stands for; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if not text.startswith("/"):
        return Say(text)
    name, _, rest = text.partition(" ")
    return _parse_slash_command(name.lower(), rest.strip())


def _parse_slash_command(name: str, rest: str) -> Command:
    if name == "/who":
        return Who()
    if name in ("/quit", "/exit"):
        return Quit()
    if name in ("/help", "/?"):
        return Help()
    if name == "/msg":
        return _parse_private(rest)
    if name == "/history":
        return _parse_history(rest)
    return Invalid(f"unknown command {name} — {USAGE}")


def _parse_private(rest: str) -> Command:
    # Split here rather than leave "/msg" to the server, so the UI knows the recipient of its
    # own copy; the server would read "/msg bob hi" the same way.
    user, _, text = rest.partition(" ")
    recipient = normalize_username(user)
    if recipient is None or not text.strip():
        return Invalid("usage: /msg USER TEXT")
    return Say(text.strip(), to=recipient)


def _parse_history(rest: str) -> Command:
    if not rest:
        return History()
    partner = normalize_username(rest)
    return History(partner) if partner is not None else Invalid("usage: /history [USER]")


def typing_recipient(line: str) -> str | None:
    """Who a line being typed is for, when it is a private message with some text already."""
    command = parse_input(line)
    return command.to if isinstance(command, Say) else None


@dataclass
class Throttle:
    """At most one event per key every ``interval`` seconds (``typing`` out, "is typing" lines in)."""

    interval: float
    last: dict[str, float] = field(default_factory=dict)

    def allows(self, key: str, now: float) -> bool:
        previous = self.last.get(key)
        if previous is not None and now - previous < self.interval:
            return False
        self.last[key] = now
        return True


@dataclass
class Backoff:
    """Reconnect delays: exponential from ``base`` up to ``cap`` seconds, with jitter.

    Half the delay is fixed and half random ("equal jitter"), so many clients dropped at once by
    one outage spread their reconnects out, yet none retries at once in a tight loop.
    """

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class SeenIds:
    """The message ids already shown, bounded so that a long session does not grow without end."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, message_id: str) -> bool:
        """Remember ``message_id``; False when it was already there (a duplicate)."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids


@dataclass(frozen=True)
class OutgoingMessage:
    """A message sent and not yet acknowledged: resent with the same clientMsgId after a reconnect."""

    client_msg_id: str
    text: str
    to: str | None

    def frame(self) -> Frame:
        return sendmessage_frame(self.text, self.to, self.client_msg_id)


@dataclass
class Reaction:
    """What one incoming frame leads to: events for the UI and frames to send back, and whether
    to ask ``ChatState.sync_retry`` for a sync again after ``retry_sync_in`` seconds."""

    events: list[Frame] = field(default_factory=list)
    replies: list[Frame] = field(default_factory=list)
    retry_sync_in: float | None = None


class Pager:
    """Where ``/history`` goes on from: per conversation, the oldest message the user has seen of
    it, live, replayed or from an earlier page (nothing seen: the latest page)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.oldest: dict[str | None, str] = {}

    def request(self, partner: str | None, limit: int = HISTORY_PAGE) -> Frame:
        return history_frame(partner, self.oldest.get(partner), limit)

    def note_shown(self, message: Frame) -> None:
        self._note(conversation_of(message, self.me), message.get("id"))

    def note_page(self, page: Frame) -> None:
        partner = page.get("with")
        if partner is None or isinstance(partner, str):
            for message in page.get("messages") or []:
                self._note(partner, message.get("id"))

    def _note(self, conversation: str | None, message_id: object) -> None:
        if not isinstance(message_id, str):
            return
        known = self.oldest.get(conversation)
        if known is None or message_id < known:  # ids are time-ordered strings
            self.oldest[conversation] = message_id


class ReadMarks:
    """Per conversation, the newest message shown and the read position already recorded, so that
    ``read`` goes out only when something newer was shown (and only from a throttled caller)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.shown: dict[str | None, str] = {}
        self.recorded: dict[str | None, str] = {}

    def note_shown(self, message: Frame) -> None:
        message_id = message.get("id")
        if not isinstance(message_id, str):
            return
        conversation = conversation_of(message, self.me)
        # Ids are time-ordered strings: the greatest is the newest.
        if message_id > self.shown.get(conversation, ""):
            self.shown[conversation] = message_id

    def note_recorded(self, conversation: str | None, up_to: object) -> None:
        """The server holds this read position already (``inbox``, or another device's ``read``)."""
        if isinstance(up_to, str) and up_to > self.recorded.get(conversation, ""):
            self.recorded[conversation] = up_to

    def due(self) -> list[Frame]:
        """The ``read`` frames for conversations shown past their recorded position; taken as sent."""
        frames = []
        for conversation, newest in self.shown.items():
            if newest > self.recorded.get(conversation, ""):
                self.recorded[conversation] = newest
                frames.append(read_frame(conversation, newest))
        return frames


class ChatState:
    """One user's view of the chat across reconnects.

    ``history`` is how many recent messages to ask for on the first connection (at least one, for
    its cursor); after that, every connection resumes from the cursor.
    """

    def __init__(
        self,
        username: str,
        *,
        cursor: str | None = None,
        history: int = 1,
        batch: bool = False,
        inbox: bool = False,
    ) -> None:
        self.username = username
        self.cursor = cursor
        self.history = history
        # Protocol 1.1: replay in ``messages`` frames; ask for the inbox on the first connection.
        self.batch = batch
        self.want_inbox = inbox
        self._inbox_asked = False
        self.outbox: OrderedDict[str, OutgoingMessage] = OrderedDict()
        self.seen = SeenIds()
        self.syncing = False
        # A refused sync is asked again after these delays, until one is answered.
        self.sync_backoff = Backoff(base=1.0, cap=30.0)
        # The ``at`` of the last presence frame applied per user: an older one is stale.
        self.presence_at: dict[str, datetime] = {}

    def compose(self, text: str, to: str | None = None) -> OutgoingMessage:
        """A new message, held in the outbox until its ack arrives."""
        message = OutgoingMessage(new_client_msg_id(), text, to)
        self.outbox[message.client_msg_id] = message
        return message

    def opening_frames(self) -> list[Frame]:
        """What to send when a connection opens: who is here, what was missed, what is unacked."""
        self.syncing = True
        self.sync_backoff.reset()
        # The inbox once, on the first connection: its unread counts are what the user missed.
        inbox = [INBOX_FRAME] if self.want_inbox and not self._inbox_asked else []
        self._inbox_asked = self._inbox_asked or bool(inbox)
        # The resends after the sync request, so replayed messages come before their acks.
        resends = [message.frame() for message in self.outbox.values()]
        return [WHO_FRAME, self._sync_request(), *inbox, *resends]

    def sync_retry(self) -> Frame | None:
        """The sync to send again after a refusal, or None when a replay has finished meanwhile."""
        return self._sync_request() if self.syncing else None

    def _sync_request(self) -> Frame:
        # Resume from the cursor; on a first connection ask for recent history instead, and at
        # least one message of it: its cursor is what a later reconnect resumes from.
        if self.cursor:
            return sync_frame(self.cursor, batch=self.batch)
        return sync_frame(None, self._history_limit(), batch=self.batch)

    def _history_limit(self) -> int:
        return min(max(self.history, 1), HISTORY_LIMIT_MAX)

    def receive(self, frame: Frame) -> Reaction:
        """Fold one server frame into the state."""
        handler = {
            "message": self._on_message,
            "messages": self._on_messages,
            "ack": self._on_ack,
            "synced": self._on_synced,
            "error": self._on_error,
            "presence": self._on_presence,
            "history": self._on_history,
        }.get(str(frame.get("type")))
        return handler(frame) if handler else Reaction(events=[frame])

    def _on_message(self, frame: Frame) -> Reaction:
        self._advance_cursor(frame)
        if frame.get("from") == self.username and frame.get("clientMsgId") in self.outbox:
            # Our own public message came back before its ack: it is stored, no need to resend.
            del self.outbox[frame["clientMsgId"]]
        if not self.seen.add(str(frame.get("id"))):
            return Reaction()
        return Reaction(events=[frame])

    def _on_messages(self, frame: Frame) -> Reaction:
        """A batch of replayed messages: each one as if it had come in its own ``message`` frame."""
        events: list[Frame] = []
        for message in frame.get("messages") or []:
            if isinstance(message, dict):
                events += self._on_message({**message, "type": "message"}).events
        return Reaction(events=events)

    def _on_history(self, frame: Frame) -> Reaction:
        """An older page of a conversation: shown as a whole, even messages seen before."""
        messages = [m for m in frame.get("messages") or [] if isinstance(m, dict)]
        for message in messages:
            self.seen.add(str(message.get("id")))  # a later replay of one is not shown again
        return Reaction(events=[{**frame, "messages": messages}])

    def _on_ack(self, frame: Frame) -> Reaction:
        self._advance_cursor(frame)
        sent = self.outbox.pop(frame.get("clientMsgId") or "", None)
        events = [frame]
        # A private message is not echoed to the connection that sent it: the ack is the only
        # sign of it here, so show our copy now (a public echo arriving later is then a duplicate).
        if sent is not None and self.seen.add(str(frame.get("id"))):
            events.insert(0, self._own_copy(sent, frame))
        return Reaction(events=events)

    def _own_copy(self, sent: OutgoingMessage, ack: Frame) -> Frame:
        return {
            "type": "message",
            "id": ack.get("id"),
            "cursor": ack.get("cursor"),
            "from": self.username,
            "to": sent.to,
            "text": sent.text,
            "sentAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "clientMsgId": sent.client_msg_id,
        }

    def _on_synced(self, frame: Frame) -> Reaction:
        if frame.get("cursor") is not None:
            self.cursor = frame["cursor"]
        if frame.get("more"):
            return Reaction(replies=[self._sync_request()])
        self.syncing = False
        self.sync_backoff.reset()
        return Reaction(events=[frame])

    def _on_presence(self, frame: Frame) -> Reaction:
        """Apply a presence frame unless it is older than the last one applied for that user (a
        late or repeated frame; protocol 1.1's ``at``). A frame without ``at`` is always applied."""
        at = _parse_time(frame.get("at"))
        user = str(frame.get("user"))
        if at is not None:
            last = self.presence_at.get(user)
            if last is not None and at < last:
                return Reaction()
            self.presence_at[user] = at
        return Reaction(events=[frame])

    def _on_error(self, frame: Frame) -> Reaction:
        if self._refuses_the_sync(frame):
            # Without an answer to the sync the missed messages would never come: ask again later.
            delay = round(self.sync_backoff.next_delay(), 1)
            retry = {"type": "sync-retry", "code": frame.get("code"), "message": frame.get("message")}
            return Reaction(events=[{**retry, "retryIn": delay}], retry_sync_in=delay)
        # A refused message is not stored: resending it after a reconnect would only fail again.
        self.outbox.pop(frame.get("clientMsgId") or "", None)
        return Reaction(events=[frame])

    def _refuses_the_sync(self, frame: Frame) -> bool:
        # An error frame does not say which request it answers. One without a clientMsgId, saying
        # "not now", while a replay is awaited is taken for the sync's: at worst (it was the who's)
        # one more sync replays what deduplication then drops.
        return self.syncing and not frame.get("clientMsgId") and frame.get("code") in RETRY_LATER_CODES

    def _advance_cursor(self, frame: Frame) -> None:
        # During a replay, live frames interleave with replayed ones and their cursors are not in
        # storage order; the ``synced`` frame's cursor settles it. A cursor that is a little behind
        # only replays a few messages again, which deduplication absorbs.
        if not self.syncing and frame.get("cursor") is not None:
            self.cursor = frame["cursor"]


def _parse_time(raw: object) -> datetime | None:
    """An ISO 8601 UTC time as the server writes it (``2026-11-27T09:30:00.123Z``), else None."""
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
