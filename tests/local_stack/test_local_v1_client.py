"""A version 1 client keeps working unchanged: it never sends the new actions or `batch`, and
everything it receives is a version 1 frame with exactly version 1's fields, but for `presence.at`."""

from __future__ import annotations

import json
import uuid

from local_stack_client import PRESENCE_GRACE, Frame

from local_stack.testing import RunningStack
from tests.support.chat_client import ChatClient

# Version 1's frames and their fields, as docs/protocol.md's version 1 table gives them.
VERSION_1_FIELDS = {
    "message": {"type", "id", "cursor", "from", "to", "text", "sentAt", "clientMsgId"},
    "ack": {"type", "id", "cursor", "clientMsgId", "duplicate"},
    "presence": {"type", "user", "online"},
    "who": {"type", "users"},
    "synced": {"type", "cursor", "more", "complete"},
    "pong": {"type"},
    "error": {"type", "code", "message", "clientMsgId"},
}
VERSION_1_ACTIONS = {"sendmessage", "sync", "who", "ping"}


class Version1Client(ChatClient):
    """A client that only knows version 1: it refuses to send anything else."""

    def send(self, frame: Frame | str) -> None:
        if isinstance(frame, dict):
            assert frame.get("action") in VERSION_1_ACTIONS and "batch" not in frame, frame
        else:
            assert frame == "ping"
        super().send(frame)


def unknown_to_version_1(frame: Frame) -> list[str]:
    """What in ``frame`` a version 1 client would not know (``presence.at`` is allowed)."""
    fields = VERSION_1_FIELDS.get(str(frame.get("type")))
    if fields is None:
        return [f"frame type {frame.get('type')!r}"]
    extra = set(frame) - fields - ({"at"} if frame["type"] == "presence" else set())
    return [f"{frame['type']}.{name}" for name in sorted(extra)]


def test_a_version_1_client_sees_only_what_it_knows(stack: RunningStack) -> None:
    """Public and private sends, /msg, a resend, sync with and without a cursor, who, both pings,
    presence of a third user coming and going: every frame is version 1's, and all of them arrive."""
    alice, bob, carol = stack.create_user("alice"), stack.create_user("bob"), stack.create_user("carol")
    alice_1, bob_1 = Version1Client.connect(stack, alice), Version1Client.connect(stack, bob)
    try:
        tag = uuid.uuid4().hex[:8]
        alice_1.send({"action": "sendmessage", "text": f"hello {tag}", "clientMsgId": f"p-{tag}"})
        public = alice_1.wait_type("ack", clientMsgId=f"p-{tag}")
        alice_1.send(
            {"action": "sendmessage", "text": f"psst {tag}", "to": bob.username, "clientMsgId": f"q-{tag}"}
        )
        alice_1.wait_type("ack", clientMsgId=f"q-{tag}")
        alice_1.send(
            {"action": "sendmessage", "text": f"psst {tag}", "to": bob.username, "clientMsgId": f"q-{tag}"}
        )
        assert alice_1.wait_type("ack", clientMsgId=f"q-{tag}", duplicate=True)
        bob_1.send({"action": "sendmessage", "text": f"/msg {alice.username} back {tag}"})
        alice_1.wait_for(lambda f: f.get("text") == f"back {tag}")
        bob_1.wait_for(lambda f: f.get("text") == f"psst {tag}")
        bob_1.send({"action": "sync", "since": public["cursor"]})
        bob_1.wait_type("synced")
        bob_1.send({"action": "sync", "limit": 5})
        bob_1.wait_for(
            lambda f: (
                f.get("type") == "synced" and len([g for g in bob_1.frames if g.get("type") == "synced"]) == 2
            )
        )
        bob_1.send({"action": "who"})
        assert alice.username in bob_1.wait_type("who")["users"]
        bob_1.send({"action": "ping"})
        bob_1.wait_type("pong")
        bob_1.send("ping")
        bob_1.wait_for(lambda f: f.get("type") == "pong" and bob_1.frames.count({"type": "pong"}) == 2)
        bob_1.send({"action": "sendmessage", "text": "   "})
        assert bob_1.wait_type("error")["code"] == "invalid_message"
        carol_1 = ChatClient.connect(stack, carol)
        alice_1.wait_for(lambda f: f.get("type") == "presence" and f.get("user") == carol.username)
        carol_1.close()
        alice_1.wait_for(
            lambda f: (
                f.get("type") == "presence" and f.get("user") == carol.username and f["online"] is False
            ),
            timeout=PRESENCE_GRACE + 10,
        )
        for client in (alice_1, bob_1):
            client.drain(quiet_for=0.3)
            unknown = [issue for frame in client.frames for issue in unknown_to_version_1(frame)]
            assert unknown == [], json.dumps(client.frames)[:500]
        assert {f["type"] for f in alice_1.frames} >= {"ack", "message", "presence"}
        assert {f["type"] for f in bob_1.frames} >= {"message", "synced", "who", "pong", "error"}
    finally:
        alice_1.close()
        bob_1.close()
