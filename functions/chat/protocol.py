"""The wire protocol (docs/protocol.md, versions 1 and 1.1): parsing client frames and building server
frames.

Pure functions over plain data: no I/O, no AWS. Every way a client frame can be wrong ends here as
one of the ``RejectedFrame`` errors of ``chat.errors``, carrying the ``clientMsgId`` when the frame
had a valid one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, NoReturn

from chat.cursor import Cursor
from chat.errors import InvalidJson, InvalidMessage, TextTooLong, UnknownAction
from chat.usernames import normalize_username

ACTIONS = ("sendmessage", "sync", "who", "ping")
FRAME_TYPES = ("message", "ack", "presence", "who", "synced", "pong", "error")
# Version 1.1: the conversation actions and the frames that answer them.
CONVERSATION_ACTIONS = ("history", "typing", "read", "inbox")
CONVERSATION_FRAME_TYPES = ("history", "typing", "read", "inbox")
ERROR_CODES = (
    "invalid_json",
    "unknown_action",
    "invalid_message",
    "text_too_long",
    "unknown_user",
    "rate_limited",
    "internal_error",
)
TEXT_LIMIT = 4000
SYNC_DEFAULT_LIMIT = 100
SYNC_MAX_LIMIT = 500
# Version 1.1: a `sync` with `batch: true` replays in `messages` frames, each at most one API
# Gateway billing unit (32 KB) as sent, in UTF-8 bytes.
BATCHED_FRAME_TYPES = ("messages",)
MESSAGES_FRAME_BYTES = 32 * 1024
CLIENT_MSG_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100
# API Gateway's largest message (a frame of 32 KB is one billing unit; a message may span frames).
MAX_MESSAGE_BYTES = 128 * 1024
# A message id as the server issues it (chat.cursor): 10 characters of time (48 bits, so the first
# is 0-7) and 16 random ones, Crockford base32 without I, L, O, U.
MESSAGE_ID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
# Letters that fill space but show nothing, beside the whitespace, control (Cc) and format (Cf)
# characters: the Hangul fillers and the braille blank.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_UNSEEN_CATEGORIES = ("Cc", "Cf")
_PRIVATE_COMMAND = re.compile(r"^/msg(?:\s+(\S+))?(?:\s+(.*))?$", re.DOTALL)
# C0 controls other than tab, newline and carriage return, DEL, and lone UTF-16 surrogates
# (valid JSON escapes, but not text anyone can store or display).
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class SendRequest:
    """A valid ``sendmessage``: ``to`` is None for a public message."""

    text: str
    to: str | None
    client_msg_id: str | None


@dataclass(frozen=True)
class HistoryRequest:
    """A valid ``history``: ``partner`` None for the public conversation; ``before`` None for the
    latest messages."""

    partner: str | None
    before: str | None
    limit: int


@dataclass(frozen=True)
class ReadRequest:
    """A valid ``read``: the conversation (``partner`` None for public) read up to ``up_to``."""

    partner: str | None
    up_to: str


@dataclass(frozen=True)
class TypingRequest:
    to: str


@dataclass(frozen=True)
class SyncRequest:
    """A valid ``sync``: ``since`` is None for "the latest ``limit`` messages"; ``batch`` packs
    the replay into ``messages`` frames (version 1.1)."""

    since: Cursor | None
    limit: int
    batch: bool


# ---- client → server -------------------------------------------------------------------------


def parse_json_object(raw: str | None) -> dict[str, Any]:
    """The frame as a JSON object, or InvalidJson / UnknownAction."""
    try:
        body = json.loads(raw or "", parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidJson("the frame is not valid JSON") from None
    if not isinstance(body, dict):
        raise UnknownAction("the frame must be a JSON object with an 'action' field")
    return body


def _reject_constant(name: str) -> None:
    """Python's json reads NaN and Infinity; JSON (RFC 8259) has no such values."""
    raise ValueError(f"{name} is not JSON")


def reject_unroutable(raw: str | None) -> None:
    """What ``$default`` answers: every frame that reaches it is refused with the right code."""
    body = parse_json_object(raw)
    action = body.get("action")
    if isinstance(action, str) and action:
        raise UnknownAction(f"unknown action {action[:64]!r}; known actions: {_KNOWN_ACTIONS}")
    raise UnknownAction(f"the frame has no 'action'; known actions: {_KNOWN_ACTIONS}")


_KNOWN_ACTIONS = ", ".join(ACTIONS + CONVERSATION_ACTIONS)


def is_bare_ping(raw: str | None) -> bool:
    """The protocol lets the simplest clients send the text ``ping`` and get ``pong``."""
    return raw is not None and raw.strip() == "ping"


def parse_send(body: dict[str, Any]) -> SendRequest:
    """Validate a ``sendmessage`` frame, resolving ``/msg <user> <text>`` into ``to`` and ``text``."""
    client_msg_id = _client_msg_id(body.get("clientMsgId"))

    def reject(error: type[InvalidMessage] | type[TextTooLong], message: str) -> NoReturn:
        raise error(message, client_msg_id=client_msg_id)

    text, to = body.get("text"), body.get("to")
    if not isinstance(text, str):
        reject(InvalidMessage, "'text' must be a string")
    if to is not None and not isinstance(to, str):
        reject(InvalidMessage, "'to' must be a username string")
    text = text.strip()
    command = _PRIVATE_COMMAND.fullmatch(text)
    if command:
        if to is not None:
            reject(InvalidMessage, "give the recipient either in 'to' or with /msg, not both")
        to, text = command.group(1), (command.group(2) or "").strip()
        if not to or not text:
            reject(InvalidMessage, "/msg needs a username and a text: /msg <user> <text>")
    if is_blank(text):
        reject(InvalidMessage, "'text' is empty or shows nothing")
    if len(text) > TEXT_LIMIT:
        reject(TextTooLong, f"'text' has {len(text)} characters; the limit is {TEXT_LIMIT}")
    if _FORBIDDEN_CHARS.search(text):
        reject(InvalidMessage, "'text' contains control characters or invalid Unicode")
    recipient = None
    if to is not None:
        recipient = normalize_username(to)
        if recipient is None:
            reject(InvalidMessage, "a username is 3 to 32 characters of a-z 0-9 _ . -")
    return SendRequest(text=text, to=recipient, client_msg_id=client_msg_id)


def is_blank(text: str) -> bool:
    """True when a reader would see nothing: only whitespace, control characters (Unicode category
    Cc, such as the C1 controls U+0080-U+009F, which the forbidden-character check lets through) and
    invisible format characters (Cf: U+200B, U+200D, U+2060, U+FEFF, bidi controls...)."""
    return all(
        char.isspace() or char in _INVISIBLE_LETTERS or unicodedata.category(char) in _UNSEEN_CATEGORIES
        for char in text
    )


def client_msg_id_of(raw: str | None) -> str | None:
    """The frame's clientMsgId if it has a valid one, else None; never raises (for error frames)."""
    try:
        body = json.loads(raw or "", parse_constant=_reject_constant)
        candidate = body.get("clientMsgId") if isinstance(body, dict) else None
        return _client_msg_id(candidate)
    except (ValueError, RecursionError, InvalidMessage):
        return None


def _client_msg_id(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not CLIENT_MSG_ID_RE.fullmatch(raw):
        raise InvalidMessage("'clientMsgId' must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    return raw


def parse_sync(body: dict[str, Any]) -> SyncRequest:
    """Validate a ``sync`` frame; the cursor's meaning is checked against the clock by the service."""
    since_raw, limit = body.get("since"), body.get("limit", SYNC_DEFAULT_LIMIT)
    if limit is None:
        limit = SYNC_DEFAULT_LIMIT
    # bool is an int in Python; `true` is not a limit.
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SYNC_MAX_LIMIT:
        raise InvalidMessage(f"'limit' must be a whole number from 1 to {SYNC_MAX_LIMIT}")
    since = None
    if since_raw is not None:
        since = Cursor.decode(since_raw) if isinstance(since_raw, str) else None
        if since is None:
            raise InvalidMessage("'since' is not a cursor this server issued")
    batch = body.get("batch", False)
    if not isinstance(batch, bool):
        raise InvalidMessage("'batch' must be true or false")
    return SyncRequest(since=since, limit=limit, batch=batch)


def parse_history(body: dict[str, Any]) -> HistoryRequest:
    """Validate a ``history`` frame (whether ``with`` has an account is the service's question)."""
    limit = body.get("limit", HISTORY_DEFAULT_LIMIT)
    if limit is None:
        limit = HISTORY_DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX_LIMIT:
        raise InvalidMessage(f"'limit' must be a whole number from 1 to {HISTORY_MAX_LIMIT}")
    before = body.get("before")
    if before is not None:
        before = _message_id(before, "before")
    return HistoryRequest(partner=_partner(body, "with"), before=before, limit=limit)


def parse_read(body: dict[str, Any]) -> ReadRequest:
    """Validate a ``read`` frame; whether ``upTo`` lies in the future is checked against the clock."""
    if body.get("upTo") is None:
        raise InvalidMessage("'upTo' (the id of the last message read) is required")
    return ReadRequest(partner=_partner(body, "with"), up_to=_message_id(body["upTo"], "upTo"))


def parse_typing(body: dict[str, Any]) -> TypingRequest:
    """Validate a ``typing`` frame: typing is private, so ``to`` is required."""
    to = _partner(body, "to")
    if to is None:
        raise InvalidMessage("'to' (who the caller is typing to) is required")
    return TypingRequest(to=to)


def _partner(body: dict[str, Any], name: str) -> str | None:
    """The username in ``body[name]``, lower-cased; None when absent or null (the public one)."""
    raw = body.get(name)
    if raw is None:
        return None
    username = normalize_username(raw) if isinstance(raw, str) else None
    if username is None:
        raise InvalidMessage(f"'{name}' must be a username: 3 to 32 characters of a-z 0-9 _ . -")
    return username


def _message_id(raw: object, name: str) -> str:
    if not isinstance(raw, str) or not MESSAGE_ID_RE.fullmatch(raw):
        raise InvalidMessage(f"'{name}' is not a message id this server issued")
    return raw


# ---- server → client -------------------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    """Frames are compact JSON text; non-ASCII stays as is (API Gateway frames are UTF-8)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def message_frame(fields: dict[str, Any]) -> dict[str, Any]:
    """A ``message`` frame: a message object (``message_fields``) with its ``type``."""
    return {"type": "message", **fields}


def message_fields(
    *,
    message_id: str,
    cursor: Cursor,
    sender: str,
    to: str | None,
    text: str,
    sent_at: str,
    client_msg_id: str | None,
) -> dict[str, Any]:
    """A message as a ``messages`` frame lists it: a ``message`` frame's fields without ``type``."""
    return {
        "id": message_id,
        "cursor": cursor.encode(),
        "from": sender,
        "to": to,
        "text": text,
        "sentAt": sent_at,
        "clientMsgId": client_msg_id,
    }


def messages_frame(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "messages", "messages": messages}


# A messages frame is this head, the encoded message objects joined by commas, and this tail:
# exactly what encode() makes of messages_frame(), so its size is known without encoding it again.
_MESSAGES_HEAD = '{"type":"messages","messages":['
_MESSAGES_TAIL = "]}"


def pack_messages(
    messages: list[dict[str, Any]], max_bytes: int = MESSAGES_FRAME_BYTES
) -> list[tuple[str, int]]:
    """``messages`` (message objects, in order) as encoded ``messages`` frames, each holding as
    many as fit in ``max_bytes`` UTF-8 bytes and at least one; with each frame, how many it holds."""
    frames: list[tuple[str, int]] = []
    part: list[str] = []
    size = 0
    for message in messages:
        encoded = encode(message)
        length = len(encoded.encode())
        if part and size + 1 + length > max_bytes:  # a comma, then the message
            frames.append((_joined(part), len(part)))
            part = []
        size = size + 1 + length if part else len(_MESSAGES_HEAD) + length + len(_MESSAGES_TAIL)
        part.append(encoded)
    if part:
        frames.append((_joined(part), len(part)))
    return frames


def _joined(encoded_messages: list[str]) -> str:
    return _MESSAGES_HEAD + ",".join(encoded_messages) + _MESSAGES_TAIL


def replay_frames(messages: list[dict[str, Any]], *, batch: bool) -> list[tuple[str, int]]:
    """What a ``sync`` posts for ``messages`` (message objects, in order), encoded, each with how
    many messages it holds: packed ``messages`` frames with ``batch``, else one ``message`` each."""
    if batch:
        return pack_messages(messages)
    return [(encode(message_frame(message)), 1) for message in messages]


def ack_frame(
    *, message_id: str, cursor: Cursor, client_msg_id: str | None, duplicate: bool
) -> dict[str, Any]:
    return {
        "type": "ack",
        "id": message_id,
        "cursor": cursor.encode(),
        "clientMsgId": client_msg_id,
        "duplicate": duplicate,
    }


def presence_frame(user: str, online: bool, *, at: str) -> dict[str, Any]:
    """``at`` (ISO 8601 UTC) is when the change happened: clients drop a frame older than the last
    one they applied for that user, so a late or repeated ``offline`` cannot undo an ``online``."""
    return {"type": "presence", "user": user, "online": online, "at": at}


def who_frame(users: list[str]) -> dict[str, Any]:
    return {"type": "who", "users": sorted(users)}


def synced_frame(cursor: Cursor, *, more: bool, complete: bool) -> dict[str, Any]:
    return {"type": "synced", "cursor": cursor.encode(), "more": more, "complete": complete}


def pong_frame() -> dict[str, Any]:
    return {"type": "pong"}


def error_frame(code: str, message: str, client_msg_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "clientMsgId": client_msg_id}


def history_frame(partner: str | None, messages: list[dict[str, Any]], *, more: bool) -> dict[str, Any]:
    """``messages`` are message objects, oldest first; ``more`` when older ones exist."""
    return {"type": "history", "with": partner, "messages": messages, "more": more}


def fit_history(partner: str | None, newest_first: list[dict[str, Any]], *, more: bool) -> dict[str, Any]:
    """The ``history`` frame of as many of these messages (newest first) as fit in one message of
    ``MAX_MESSAGE_BYTES``, oldest first. Older ones left out set ``more``: the client pages on from
    the oldest one it got."""
    taken: list[dict[str, Any]] = []
    size = len(encode(history_frame(partner, [], more=True)).encode())
    for count, message in enumerate(newest_first, start=1):
        # Each further message adds its JSON and one comma.
        size += len(encode(message).encode()) + (1 if taken else 0)
        # Taking the last one when ``more`` is false makes the frame say `false`, a byte longer
        # than the `true` counted above.
        says_false = count == len(newest_first) and not more
        if size + int(says_false) > MAX_MESSAGE_BYTES:
            break
        taken.append(message)
    more = more or len(taken) < len(newest_first)
    return history_frame(partner, list(reversed(taken)), more=more)


def typing_frame(sender: str) -> dict[str, Any]:
    return {"type": "typing", "from": sender}


def read_frame(reader: str, partner: str | None, up_to: str) -> dict[str, Any]:
    """The same frame serves the reader's devices (``with`` is their partner) and, in a private
    conversation, the partner's (for whom ``with`` is the reader's partner: the partner itself)."""
    return {"type": "read", "user": reader, "with": partner, "upTo": up_to}


@dataclass(frozen=True)
class Conversation:
    """One row of the ``inbox`` frame: ``last`` a message object or None."""

    partner: str | None
    last: dict[str, Any] | None
    unread: int
    read_up_to: str | None
    their_read_up_to: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "with": self.partner,
            "last": self.last,
            "unread": self.unread,
            "readUpTo": self.read_up_to,
            "theirReadUpTo": self.their_read_up_to,
        }


INBOX_MAX_CONVERSATIONS = 100


def inbox_frame(conversations: list[Conversation]) -> dict[str, Any]:
    """Newest ``last`` first (the public one is always listed), at most 100 conversations, and no
    more than fit in one message of ``MAX_MESSAGE_BYTES`` (long last messages can make fewer fit):
    the oldest private ones are left out first."""
    public = [c for c in conversations if c.partner is None][:1]
    private = sorted((c for c in conversations if c.partner is not None), key=_last_id, reverse=True)[
        : INBOX_MAX_CONVERSATIONS - len(public)
    ]
    kept = list(public)
    size = len(encode({"type": "inbox", "conversations": [c.as_json() for c in kept]}).encode())
    for conversation in private:
        # Each further row adds its JSON and, after the first, one comma.
        size += len(encode(conversation.as_json()).encode()) + (1 if kept else 0)
        if size > MAX_MESSAGE_BYTES:
            break
        kept.append(conversation)
    kept.sort(key=_last_id, reverse=True)
    return {"type": "inbox", "conversations": [c.as_json() for c in kept]}


def _last_id(conversation: Conversation) -> str:
    """Sort key: the last message's id (time-ordered); a conversation without one sorts last."""
    return str(conversation.last["id"]) if conversation.last else ""
