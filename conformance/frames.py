"""The server's frames as the protocol defines them: exact field sets and value types (pure code).

``problems(frame)`` lists what is wrong with one frame, or nothing. Version 1 fixes each frame
type's fields; version 1.1 adds ``at`` to ``presence`` (accepted, never required), ``messages`` (the
batched replay, checked message by message) and frame types a client only gets for actions this
suite never sends.
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
    "messages": frozenset({"type", "messages"}),
    "pong": frozenset({"type"}),
    "error": frozenset({"type", "code", "message", "clientMsgId"}),
}
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {"presence": frozenset({"at"})}
# Version 1.1 frames: answers to actions this suite never sends, or sent to a user by another one.
LATER_TYPES = frozenset({"history", "typing", "read", "inbox"})
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


def _sorted_usernames(value: Any) -> str | None:
    if not isinstance(value, list) or any(_username(user) for user in value):
        return f"is not a list of usernames: {value!r:.80}"
    return None if value == sorted(value) else "is not sorted"


def _message_objects(value: Any) -> str | None:
    """A non-empty list of message frames' contents, each without `type` (version 1.1)."""
    if not isinstance(value, list) or not value:
        return f"is not a non-empty list: {value!r:.60}"
    for item in value:
        if isinstance(item, dict) and "type" in item:
            return "holds a message with a `type` field"
        if issues := problems({"type": "message", **item} if isinstance(item, dict) else item):
            return f"holds a malformed message: {issues[0]}"
    return None


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
    "messages": {"messages": _message_objects},
    "error": {"code": _error_code, "message": _string, "clientMsgId": _optional_text},
}
