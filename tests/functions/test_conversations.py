"""Version 1.1's conversation actions through the real handlers, moto's DynamoDB and Cognito over
HTTP and the management-API double: history, read, typing, inbox, and every error of their table."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from chat import config, wiring
from chat.cursor import IdGenerator
from chat.handlers import history, inbox, read
from chat.handlers import typing as typing_route
from chat.store import PUBLIC_FEED, StoredMessage, _message_item, dm_feed

from tests.support import world as world_module
from tests.support.world import ChatWorld

NEW_ROUTES = {
    "history": history.handler,
    "typing": typing_route.handler,
    "read": read.handler,
    "inbox": inbox.handler,
}


@pytest.fixture
def chat(world: ChatWorld, monkeypatch: pytest.MonkeyPatch) -> ChatWorld:
    """The world with the new routes routed, alice, bob and carol signed up, and budgets off
    (these tests page and count far faster than a person would)."""
    for route, handler in NEW_ROUTES.items():
        monkeypatch.setitem(world_module.ROUTE_HANDLERS, route, handler)
    for name, value in config.budgets_off().items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    for user in ("alice", "bob", "carol"):
        world.add_user(user)
    return world


def _ack(world: ChatWorld, connection: str, user: str, text: str, **fields: Any) -> dict[str, Any]:
    world.say(connection, user, text, **fields)
    return world.frames(connection, "ack")[-1]


def _history(world: ChatWorld, connection: str, user: str, **fields: Any) -> dict[str, Any]:
    world.send(connection, user, {"action": "history", **fields})
    return world.frames(connection, "history")[-1]


def _inbox(world: ChatWorld, connection: str, user: str) -> dict[str | None, dict[str, Any]]:
    world.send(connection, user, {"action": "inbox"})
    conversations = world.frames(connection, "inbox")[-1]["conversations"]
    return {c["with"]: c for c in conversations}


def _error(world: ChatWorld, connection: str, user: str, body: dict[str, Any]) -> str:
    before = len(world.frames(connection, "error"))
    world.send(connection, user, body)
    errors = world.frames(connection, "error")
    assert len(errors) == before + 1, f"no error for {body}"
    return str(errors[-1]["code"])


def _bulk_store(world: ChatWorld, feed: str, messages: list[StoredMessage]) -> None:
    """Items in the store's own format, 25 a BatchWriteItem (moto copies the table per transaction)."""
    expires_at = int(time.time()) + 86400
    for start in range(0, len(messages), 25):
        world.dynamodb.batch_write_item(
            RequestItems={
                world.tables["Messages"]: [
                    {"PutRequest": {"Item": _message_item(m, feed, expires_at)}}
                    for m in messages[start : start + 25]
                ]
            }
        )


def _messages(sender: str, to: str | None, count: int, text: str = "m") -> list[StoredMessage]:
    ids = IdGenerator()
    start_ms = int(time.time() * 1000) - 60_000
    return [
        StoredMessage(
            ids.new_id(start_ms + n), sender, to, f"{n:04d} {text}", "2026-12-01T00:00:00.000Z", None
        )
        for n in range(count)
    ]


# ---- history ------------------------------------------------------------------------------------


def test_public_history_pages_back_oldest_first(chat: ChatWorld) -> None:
    """The latest `limit` public messages oldest first with `more`; `before` the oldest gives the rest."""
    a1 = chat.connect("alice")
    ids = [_ack(chat, a1, "alice", f"public {n}")["id"] for n in range(5)]
    page = _history(chat, a1, "alice", limit=3)
    assert [m["id"] for m in page["messages"]] == ids[2:]
    assert page["with"] is None and page["more"] is True
    assert set(page["messages"][0]) == {"id", "cursor", "from", "to", "text", "sentAt", "clientMsgId"}
    rest = _history(chat, a1, "alice", limit=3, before=ids[2])
    assert [m["id"] for m in rest["messages"]] == ids[:2] and rest["more"] is False


def test_private_history_holds_both_directions_of_one_conversation_only(chat: ChatWorld) -> None:
    """`with: bob` lists what alice and bob sent each other, in order, and nothing of carol's."""
    a1, b1, c1 = chat.connect("alice"), chat.connect("bob"), chat.connect("carol")
    expected = [
        _ack(chat, a1, "alice", "hi bob", to="bob")["id"],
        _ack(chat, b1, "bob", "hi alice", to="alice")["id"],
    ]
    _ack(chat, c1, "carol", "hi alice", to="alice")
    _ack(chat, a1, "alice", "public")
    expected.append(_ack(chat, a1, "alice", "/msg bob again")["id"])
    for connection, user, partner in ((a1, "alice", "bob"), (b1, "bob", "alice")):
        page = _history(chat, connection, user, **{"with": partner})
        assert [m["id"] for m in page["messages"]] == expected
        assert page["with"] == partner and page["more"] is False
    assert [m["text"] for m in _history(chat, c1, "carol", **{"with": "alice"})["messages"]] == ["hi alice"]


def test_history_of_large_messages_fits_one_frame_and_pages_across_megabyte_pages(chat: ChatWorld) -> None:
    """120 messages of 4,000 three-byte characters (1.4 MB, more than a Query page): each answer
    fits 128 KB, says `more` while older ones exist, and paging back returns each exactly once."""
    stored = _messages("bob", "alice", 120, text="€" * 3995)
    _bulk_store(chat, dm_feed("bob", "alice"), stored)
    a1 = chat.connect("alice")
    seen: list[str] = []
    before = None
    for _ in range(40):
        page = _history(
            chat, a1, "alice", limit=100, **{"with": "bob"}, **({"before": before} if before else {})
        )
        # As the server encodes it: compact JSON, UTF-8.
        encoded = json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()
        assert len(encoded) <= 128 * 1024
        assert 0 < len(page["messages"]) < 100
        seen = [m["id"] for m in page["messages"]] + seen
        before = page["messages"][0]["id"]
        if not page["more"]:
            break
    assert seen == [m.id for m in stored]


def test_history_errors(chat: ChatWorld) -> None:
    """`with` the caller, an unknown user, a malformed `before`, `limit` outside 1 to 100 are refused."""
    a1 = chat.connect("alice")
    assert _error(chat, a1, "alice", {"action": "history", "with": "alice"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "history", "with": "ALICE"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "history", "with": "nobody"}) == "unknown_user"
    assert _error(chat, a1, "alice", {"action": "history", "with": "a!"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "history", "with": 5}) == "invalid_message"
    for before in ("c1.xyz", "0" * 25, "8" + "0" * 25, "01M8E5E6HV0VHQM8YV419831PU", 7):
        assert _error(chat, a1, "alice", {"action": "history", "before": before}) == "invalid_message"
    for limit in (0, 101, True, "10", 2.5):
        assert _error(chat, a1, "alice", {"action": "history", "limit": limit}) == "invalid_message"
    assert _history(chat, a1, "alice", limit=100)["messages"] == []


# ---- read ---------------------------------------------------------------------------------------


def test_private_read_reaches_the_readers_other_devices_and_the_partner(chat: ChatWorld) -> None:
    """alice reading her conversation with bob on one device: her other device and both of bob's
    get one `read` frame (`with: bob` everywhere), the reading device and carol nothing."""
    a1, a2 = chat.connect("alice"), chat.connect("alice")
    b1, b2, c1 = chat.connect("bob"), chat.connect("bob"), chat.connect("carol")
    last = _ack(chat, b1, "bob", "read me", to="alice")["id"]
    chat.send(a1, "alice", {"action": "read", "with": "bob", "upTo": last})
    expected = {"type": "read", "user": "alice", "with": "bob", "upTo": last}
    for connection in (a2, b1, b2):
        assert chat.frames(connection, "read") == [expected], connection
    assert chat.frames(a1, "read") == [] and chat.frames(c1, "read") == []
    assert chat.frames(a1, "error") == []


def test_public_read_reaches_only_the_readers_other_devices(chat: ChatWorld) -> None:
    """A public read position is the reader's business: their other devices hear of it, nobody else."""
    a1, a2, b1 = chat.connect("alice"), chat.connect("alice"), chat.connect("bob")
    last = _ack(chat, b1, "bob", "everyone")["id"]
    chat.send(a1, "alice", {"action": "read", "upTo": last, "with": None})
    assert chat.frames(a2, "read") == [{"type": "read", "user": "alice", "with": None, "upTo": last}]
    assert chat.frames(b1, "read") == [] and chat.frames(a1, "read") == []


def test_a_read_position_never_moves_backwards(chat: ChatWorld) -> None:
    """The same or an earlier `upTo` changes nothing and sends nothing; a later one moves it on."""
    a1, a2, b1 = chat.connect("alice"), chat.connect("alice"), chat.connect("bob")
    first, second = (_ack(chat, b1, "bob", f"n{n}", to="alice")["id"] for n in range(2))
    chat.send(a1, "alice", {"action": "read", "with": "bob", "upTo": second})
    chat.send(a1, "alice", {"action": "read", "with": "bob", "upTo": second})
    chat.send(a2, "alice", {"action": "read", "with": "bob", "upTo": first})
    assert [f["upTo"] for f in chat.frames(b1, "read")] == [second]
    assert [f["upTo"] for f in chat.frames(a2, "read")] == [second]
    assert chat.frames(a1, "read") == []
    assert _inbox(chat, a1, "alice")["bob"]["readUpTo"] == second
    third = _ack(chat, b1, "bob", "n2", to="alice")["id"]
    chat.send(a2, "alice", {"action": "read", "with": "bob", "upTo": third})
    assert [f["upTo"] for f in chat.frames(b1, "read")] == [second, third]
    assert chat.frames(a1, "error") == [] and chat.frames(a2, "error") == []


def test_read_errors(chat: ChatWorld) -> None:
    """`with` the caller or nobody, `upTo` missing, malformed or in the future are refused."""
    a1 = chat.connect("alice")
    last = _ack(chat, a1, "alice", "x")["id"]
    assert _error(chat, a1, "alice", {"action": "read", "with": "alice", "upTo": last}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "read", "with": "nobody", "upTo": last}) == "unknown_user"
    assert _error(chat, a1, "alice", {"action": "read", "with": "bob"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "read", "upTo": "not-an-id"}) == "invalid_message"
    future = IdGenerator().new_id(int(time.time() * 1000) + 3_600_000)
    assert _error(chat, a1, "alice", {"action": "read", "upTo": future}) == "invalid_message"
    chat.send(a1, "alice", {"action": "read", "upTo": last})  # the valid one is taken silently
    assert len(chat.frames(a1, "error")) == 5


# ---- typing -------------------------------------------------------------------------------------


def test_typing_reaches_every_connection_of_the_recipient_once_in_three_seconds(chat: ChatWorld) -> None:
    """One `typing` reaches both of bob's devices; another within 3 s is dropped without an answer;
    one after 3 s is forwarded again. Nobody else hears of it."""
    a1, a2 = chat.connect("alice"), chat.connect("alice")
    b1, b2, c1 = chat.connect("bob"), chat.connect("bob"), chat.connect("carol")
    chat.send(a1, "alice", {"action": "typing", "to": "bob"})
    chat.send(a2, "alice", {"action": "typing", "to": "bob"})
    for connection in (b1, b2):
        assert chat.frames(connection, "typing") == [{"type": "typing", "from": "alice"}]
    answers = [f for c in (a1, a2) for f in chat.frames(c) if f["type"] in ("typing", "error")]
    assert answers == [] and chat.frames(c1, "typing") == []
    chat.send(c1, "carol", {"action": "typing", "to": "bob"})  # another sender has its own window
    assert [f["from"] for f in chat.frames(b1, "typing")] == ["alice", "carol"]
    chat.later(seconds=3.1)
    chat.send(a1, "alice", {"action": "typing", "to": "bob"})
    assert [f["from"] for f in chat.frames(b2, "typing")] == ["alice", "carol", "alice"]


def test_typing_errors(chat: ChatWorld) -> None:
    """`typing` without `to`, to the caller, or to nobody is refused."""
    a1 = chat.connect("alice")
    assert _error(chat, a1, "alice", {"action": "typing"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "typing", "to": None}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "typing", "to": "Alice"}) == "invalid_message"
    assert _error(chat, a1, "alice", {"action": "typing", "to": "nobody"}) == "unknown_user"


# ---- inbox --------------------------------------------------------------------------------------


def test_inbox_lists_conversations_newest_first_with_unread_counts_and_positions(chat: ChatWorld) -> None:
    """Public always listed; each private conversation with its last message, the unread messages
    from the partner after alice's position, her position and the partner's."""
    a1, b1, c1 = chat.connect("alice"), chat.connect("bob"), chat.connect("carol")
    empty = _inbox(chat, a1, "alice")
    assert list(empty) == [None]
    assert empty[None] == {"with": None, "last": None, "unread": 0, "readUpTo": None, "theirReadUpTo": None}
    _ack(chat, b1, "bob", "b1", to="alice")
    b2 = _ack(chat, b1, "bob", "b2", to="alice")["id"]
    public = _ack(chat, c1, "carol", "to all")["id"]
    c_last = _ack(chat, c1, "carol", "c1", to="alice")["id"]
    _ack(chat, a1, "alice", "mine to carol", to="carol")
    chat.send(b1, "bob", {"action": "read", "with": "alice", "upTo": b2})
    inbox_now = _inbox(chat, a1, "alice")
    conversations = chat.frames(a1, "inbox")[-1]["conversations"]
    assert [c["with"] for c in conversations] == ["carol", None, "bob"]
    assert inbox_now["carol"]["last"]["text"] == "mine to carol" and inbox_now["carol"]["unread"] == 1
    assert inbox_now["carol"]["last"]["to"] == "carol" and "type" not in inbox_now["carol"]["last"]
    assert inbox_now["bob"]["unread"] == 2 and inbox_now["bob"]["last"]["id"] == b2
    assert inbox_now["bob"]["theirReadUpTo"] == b2 and inbox_now["bob"]["readUpTo"] is None
    assert inbox_now[None]["last"]["id"] == public and inbox_now[None]["unread"] == 1
    assert inbox_now[None]["theirReadUpTo"] is None
    chat.send(a1, "alice", {"action": "read", "with": "carol", "upTo": c_last})
    chat.send(a1, "alice", {"action": "read", "upTo": public})
    after = _inbox(chat, a1, "alice")
    assert (after["carol"]["unread"], after["carol"]["readUpTo"]) == (0, c_last)
    assert (after[None]["unread"], after[None]["readUpTo"]) == (0, public)
    assert _inbox(chat, c1, "carol")["alice"]["theirReadUpTo"] == c_last


def test_unread_counts_stop_at_one_hundred(chat: ChatWorld) -> None:
    """150 unread messages count as 100 ("100 or more"), in private and public; the caller's own
    public messages are not counted."""
    from_bob = _messages("bob", "alice", 150)
    _bulk_store(chat, dm_feed("bob", "alice"), from_bob)
    _bulk_store(chat, PUBLIC_FEED, _messages("bob", None, 150))
    a1, b1 = chat.connect("alice"), chat.connect("bob")
    _ack(chat, b1, "bob", "the last one", to="alice")  # writes the conversation's inbox items
    counts = _inbox(chat, a1, "alice")
    assert counts["bob"]["unread"] == 100 and counts[None]["unread"] == 100
    chat.send(a1, "alice", {"action": "read", "with": "bob", "upTo": from_bob[100].id})
    assert _inbox(chat, a1, "alice")["bob"]["unread"] == 50  # 49 stored after it, and the last one
    assert _inbox(chat, b1, "bob")[None]["unread"] == 0  # all public ones are bob's own
    public_mine = _messages("alice", None, 30)
    _bulk_store(chat, PUBLIC_FEED, public_mine)
    _ack(chat, b1, "bob", "one more public")
    chat.send(a1, "alice", {"action": "read", "upTo": public_mine[0].id})
    assert _inbox(chat, a1, "alice")[None]["unread"] == 1


def test_inbox_lists_at_most_one_hundred_conversations(chat: ChatWorld) -> None:
    """With 105 partners the inbox holds the public conversation and the 99 newest private ones."""
    store = chat.service.store
    partners = [f"user{n:03d}" for n in range(105)]
    for n, partner in enumerate(partners):
        [message] = _messages(partner, "alice", 1, text=f"from {partner}")
        message = StoredMessage(
            IdGenerator().new_id(int(time.time() * 1000) - 1000 + n),
            partner,
            "alice",
            message.text,
            message.sent_at,
            None,
        )
        writes = store._conversation_writes(message, "alice", int(time.time()) + 3600)
        for write in writes:
            chat.dynamodb.put_item(**write["Put"])
    a1 = chat.connect("alice")
    chat.send(a1, "alice", {"action": "inbox"})
    conversations = chat.frames(a1, "inbox")[-1]["conversations"]
    assert len(conversations) == 100
    assert [c["with"] for c in conversations if c["with"]] == list(reversed(partners))[:99]
    assert None in [c["with"] for c in conversations]


# ---- blank text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["\u200b", "\u200d\u2060\ufeff", " \u202e\u2066 ", "\u3164", "/msg bob \u200b"]
)
def test_text_that_shows_nothing_is_refused(chat: ChatWorld, text: str) -> None:
    """Only whitespace, zero-width or other invisible format characters is `invalid_message`."""
    a1 = chat.connect("alice")
    assert _error(chat, a1, "alice", {"action": "sendmessage", "text": text}) == "invalid_message"
    assert chat.frames(a1, "ack") == []
