"""How events read on a terminal: one line each, or nothing for the ones a person need not see."""

from __future__ import annotations

from datetime import datetime

from clients.cli.protocol import Frame

# The protocol counts unread messages up to 100, which stands for "100 or more".
UNREAD_CAP = 100


def format_event(event: Frame, me: str) -> str | None:
    formatter = _FORMATTERS.get(str(event.get("type")))
    return formatter(event, me) if formatter else None


def format_message(message: Frame, me: str) -> str:
    """``12:01 alice: hi`` when public; ``12:01 [to bob] hi`` / ``12:01 [from bob] hi`` when private."""
    time = local_time(message.get("sentAt"))
    sender, recipient, text = message.get("from"), message.get("to"), message.get("text")
    if recipient is None:
        return f"{time} {sender}: {text}"
    if sender == me:
        return f"{time} [to {recipient}] {text}"
    if recipient == me:
        return f"{time} [from {sender}] {text}"
    return f"{time} [{sender} to {recipient}] {text}"


def local_time(sent_at: object) -> str:
    """``HH:MM`` in local time, from the server's ISO 8601 UTC ``sentAt``."""
    try:
        moment = datetime.fromisoformat(str(sent_at).replace("Z", "+00:00"))
    except ValueError:
        return "--:--"
    return moment.astimezone().strftime("%H:%M")


def _presence(event: Frame, me: str) -> str:
    return f"* {event.get('user')} {'is online' if event.get('online') else 'went offline'}"


def _who(event: Frame, me: str) -> str:
    users = event.get("users") or []
    return f"* online: {', '.join(users)}" if users else "* nobody is online"


def _error(event: Frame, me: str) -> str:
    return f"! {event.get('code')}: {event.get('message')}"


def _synced(event: Frame, me: str) -> str | None:
    if event.get("complete", True):
        return None
    return "* some messages from while you were away are past retention and gone"


def _sync_retry(event: Frame, me: str) -> str:
    return f"* could not catch up yet ({event.get('code')}); trying again in {event.get('retryIn')}s"


def _history(event: Frame, me: str) -> str:
    """An older page of one conversation, oldest first, saying when it reaches the beginning."""
    partner = event.get("with")
    where = f"with {partner}" if partner else "in public"
    messages = event.get("messages") or []
    lines = [f"* earlier {where}:", *(format_message(m, me) for m in messages)] if messages else []
    if event.get("more"):
        lines.append(f"* {f'/history {partner}' if partner else '/history'} again for older ones")
    else:
        lines.append(f"* no older messages {where}")
    return "\n".join(lines)


def _inbox(event: Frame, me: str) -> str | None:
    """One line per private conversation with something unread; nothing when all is read."""
    lines = [
        f"* {unread_count(entry.get('unread'))} unread from {entry.get('with')}"
        for entry in event.get("conversations") or []
        if isinstance(entry, dict) and entry.get("with") and _positive(entry.get("unread"))
    ]
    return "\n".join(lines) or None


def unread_count(unread: object) -> str:
    """The protocol's unread count as a person reads it: 100 means "100 or more"."""
    return "100+" if isinstance(unread, int) and unread >= UNREAD_CAP else str(unread)


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _connection(event: Frame, me: str) -> str | None:
    state = event.get("state")
    if state == "online":
        return f"* connected as {me}"
    if state == "offline" and "retryIn" in event:
        return f"* disconnected ({event.get('reason')}); reconnecting in {event['retryIn']}s"
    return None


_FORMATTERS = {
    "message": format_message,
    "presence": _presence,
    "who": _who,
    "error": _error,
    "synced": _synced,
    "connection": _connection,
    "sync-retry": _sync_retry,
    "history": _history,
    "inbox": _inbox,
}
