"""Deliberate faults that make the stack break its own contract, to prove a checker notices.

``python -m local_stack --break private-delivery``: the management API answers 200 to a post of a
private ``message`` frame to any of the recipient's connections but its oldest one, and sends
nothing: a user with two tabs sees private messages in one of them only. Everything else, the
Lambda code included, runs as always; sync still replays the message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

PRIVATE_DELIVERY = "private-delivery"
BREAKS = (PRIVATE_DELIVERY,)

# (connection id, posted data) → True to drop the post silently.
Dropper = Callable[[str, bytes], bool]


class Connections(Protocol):
    def connection_ids_of(self, user: str) -> list[str]: ...


def dropper(breaks: tuple[str, ...], connections: Connections) -> Dropper | None:
    """The predicate the management API applies to each post, or None when nothing is broken."""
    unknown = set(breaks) - set(BREAKS)
    if unknown:
        raise ValueError(f"unknown breaks: {', '.join(sorted(unknown))}; known: {', '.join(BREAKS)}")
    if PRIVATE_DELIVERY not in breaks:
        return None

    def drop_private_to_later_tabs(connection_id: str, data: bytes) -> bool:
        recipient = _private_recipient(data)
        return recipient is not None and connection_id in connections.connection_ids_of(recipient)[1:]

    return drop_private_to_later_tabs


def _private_recipient(data: bytes) -> str | None:
    try:
        frame = json.loads(data)
    except ValueError:
        return None
    if isinstance(frame, dict) and frame.get("type") == "message" and isinstance(frame.get("to"), str):
        return str(frame["to"])
    return None
