"""The server's frames as the protocol defines them: exact field sets and value types (pure code).

``problems(frame)`` lists what is wrong with one frame, or nothing. Version 1 fixes each frame
type's fields; version 1.1 adds ``at`` to ``presence`` (accepted, never required), the answers to
the conversation actions (``history``, ``typing``, ``read``, ``inbox``), and ``messages``, which a
client gets only for ``sync`` with ``batch``, an option this suite never sends.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

Frame = dict[str, Any]

FIELDS: dict[str, frozenset[str]] = {
    "message": frozenset({"type", "id", "cursor", "from", "to", "text", "sentAt", "clientMsgId"}),
    "ack": frozenset({"type", "id", "cursor", "clientMsgId", "duplicate"}),
    "presence": frozenset({"type", "user", "online"}),
    "who": frozenset({"type", "users"}),
    "synced": frozenset({"type", "cursor", "more", "complete"}),
    "pong": frozenset({"type"}),
    "error": frozenset({"type", "code", "message", "clientMsgId"}),
    "history": frozenset({"type", "with", "messages", "more"}),
    "typing": frozenset({"type", "from"}),
    "read": frozenset({"type", "user", "with", "upTo"}),
    "inbox": frozenset({"type", "conversations"}),
}
# A message inside ``history`` and ``inbox``: a ``message`` frame's fields without ``type``.
MESSAGE_OBJECT_FIELDS = FIELDS["message"] - {"type"}
CONVERSATION_FIELDS = frozenset({"with", "last", "unread", "readUpTo", "theirReadUpTo"})
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {"presence": frozenset({"at"})}
# Version 1.1 frames this suite never asks for (``sync`` with ``batch``).
LATER_TYPES = frozenset({"messages"})
ERROR_CODES = frozenset(
    {
        "invalid_json",
        "unknown_action",
        "invalid_message",
        "text_too_long",
        "unknown_user",
        "rate_limited",
        "internal_error",
    }
)
USERNAME = re.compile(r"^[a-z0-9_.-]{3,32}$")
# The form of the ids the server issues: 26 characters of Crockford base32, time first.
MESSAGE_ID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def problems(frame: Any) -> list[str]:
    """What is wrong with one server frame (empty when it is exactly as the protocol says)."""
    if not isinstance(frame, dict):
        return [f"not a JSON object: {frame!r:.80}"]
    kind = frame.get("type")
    if kind in LATER_TYPES:
        return []
    if kind not in FIELDS:
        return [f"unknown frame type {kind!r}"]
    found = set(frame)
    missing = FIELDS[kind] - found
    extra = found - FIELDS[kind] - OPTIONAL_FIELDS.get(kind, frozenset())
    issues = [f"{kind} frame lacks {sorted(missing)}"] if missing else []
    if extra:
        issues.append(f"{kind} frame has unexpected {sorted(extra)}")
    for name, check in _VALUES.get(kind, {}).items():
        if name in frame and (issue := check(frame[name])):
            issues.append(f"{kind}.{name} {issue}")
    return issues


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"is not a non-empty string: {value!r:.60}"


def _username(value: Any) -> str | None:
    return None if isinstance(value, str) and USERNAME.fullmatch(value) else f"is not a username: {value!r}"


def _optional_username(value: Any) -> str | None:
    return None if value is None else _username(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"is not a boolean: {value!r}"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"is not a string: {value!r:.60}"


def _utc_timestamp(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"is not an ISO 8601 string: {value!r}"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"is not ISO 8601: {value!r}"
    if moment.utcoffset() != timedelta(0):
        return f"is not in UTC: {value!r}"
    return None


def _error_code(value: Any) -> str | None:
    return None if value in ERROR_CODES else f"is not an error code of the protocol: {value!r}"


def _message_id(value: Any) -> str | None:
    return (
        None if isinstance(value, str) and MESSAGE_ID.fullmatch(value) else f"is not a message id: {value!r}"
    )


def _optional_message_id(value: Any) -> str | None:
    return None if value is None else _message_id(value)


def _message_object(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != MESSAGE_OBJECT_FIELDS:
        return f"is not a message object: {value!r:.80}"
    issues = [
        f"{name} {issue}" for name, check in _VALUES["message"].items() if (issue := check(value[name]))
    ]
    return "; ".join(issues) or None


def _message_list(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"is not a list: {value!r:.60}"
    issues = [issue for item in value if (issue := _message_object(item))]
    if issues:
        return issues[0]
    ids = [item["id"] for item in value]
    return None if ids == sorted(ids) else "is not oldest first"


def _conversation(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != CONVERSATION_FIELDS:
        return f"is not a conversation: {value!r:.80}"
    unread = value["unread"]
    checks = [
        _optional_username(value["with"]),
        None if value["last"] is None else _message_object(value["last"]),
        None
        if isinstance(unread, int) and not isinstance(unread, bool) and 0 <= unread <= 100
        else f"unread {unread!r} is not 0 to 100",
        _optional_message_id(value["readUpTo"]),
        _optional_message_id(value["theirReadUpTo"]),
        "a public conversation has theirReadUpTo"
        if value["with"] is None and value["theirReadUpTo"]
        else None,
    ]
    return "; ".join(issue for issue in checks if issue) or None


def _conversations(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > 100:
        return f"is not a list of at most 100: {value!r:.60}"
    issues = [issue for item in value if (issue := _conversation(item))]
    if issues:
        return issues[0]
    if [c["with"] for c in value].count(None) != 1:
        return "does not list the public conversation once"
    lasts = [c["last"]["id"] if c["last"] else "" for c in value]
    return None if lasts == sorted(lasts, reverse=True) else "is not newest first"


def _sorted_usernames(value: Any) -> str | None:
    if not isinstance(value, list) or any(_username(user) for user in value):
        return f"is not a list of usernames: {value!r:.80}"
    return None if value == sorted(value) else "is not sorted"


_VALUES = {
    "message": {
        "id": _text,
        "cursor": _text,
        "from": _username,
        "to": _optional_username,
        "text": _text,
        "sentAt": _utc_timestamp,
        "clientMsgId": _optional_text,
    },
    "ack": {"id": _text, "cursor": _text, "clientMsgId": _optional_text, "duplicate": _boolean},
    "presence": {"user": _username, "online": _boolean, "at": _utc_timestamp},
    "who": {"users": _sorted_usernames},
    "synced": {"cursor": _text, "more": _boolean, "complete": _boolean},
    "error": {"code": _error_code, "message": _string, "clientMsgId": _optional_text},
    "history": {"with": _optional_username, "messages": _message_list, "more": _boolean},
    "typing": {"from": _username},
    "read": {"user": _username, "with": _optional_username, "upTo": _message_id},
    "inbox": {"conversations": _conversations},
}
