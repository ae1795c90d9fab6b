"""The deliberate faults of ``--break``: which posts they drop (pure, over a fake gateway)."""

from __future__ import annotations

import json

import pytest

from local_stack.breaks import PRIVATE_DELIVERY, dropper


class FakeConnections:
    def __init__(self, by_user: dict[str, list[str]]) -> None:
        self.by_user = by_user

    def connection_ids_of(self, user: str) -> list[str]:
        return self.by_user.get(user, [])


CONNECTIONS = FakeConnections({"bob": ["bob-1", "bob-2", "bob-3"], "alice": ["alice-1", "alice-2"]})


def frame(**fields: object) -> bytes:
    return json.dumps({"type": "message", "from": "alice", "text": "hi", **fields}).encode()


def test_nothing_is_broken_by_default() -> None:
    """Without a break there is no dropper at all."""
    assert dropper((), CONNECTIONS) is None


def test_private_delivery_drops_posts_to_the_recipients_later_tabs_only() -> None:
    """Private messages reach the recipient's oldest tab and the sender's tabs; later tabs miss them."""
    drop = dropper((PRIVATE_DELIVERY,), CONNECTIONS)
    assert drop is not None
    private = frame(to="bob")
    assert [drop(c, private) for c in ("bob-1", "bob-2", "bob-3")] == [False, True, True]
    assert [drop(c, private) for c in ("alice-1", "alice-2")] == [False, False]


def test_private_delivery_leaves_every_other_frame_alone() -> None:
    """Public messages, presence, acks and non-JSON posts all go through."""
    drop = dropper((PRIVATE_DELIVERY,), CONNECTIONS)
    assert drop is not None
    for data in (frame(to=None), b'{"type":"presence","user":"bob","online":true}', b"\xff not json"):
        assert not drop("bob-2", data)


def test_an_unknown_break_is_refused() -> None:
    """A misspelt break fails loudly rather than testing nothing."""
    with pytest.raises(ValueError, match="unknown breaks: privat"):
        dropper(("privat",), CONNECTIONS)
