"""Faults on real sockets against the local stack: a socket killed in the middle of a ``sync``,
and a management API that throttles a share of all calls. Every acknowledged message still
reaches every session that should have it, live or by ``sync``."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from local_stack.testing import RunningStack, running_stack
from tests.support.chat_client import ChatClient, Frame, OpenClient, new_client_msg_id


def send_all(client: ChatClient, texts: list[str], **fields: object) -> list[Frame]:
    """Send every text at once (not waiting in between); their acks. A send whose ack does not come
    is sent again with the same clientMsgId, as a client does: it is stored once whatever happens."""
    frames = {new_client_msg_id(): text for text in texts}
    acks: dict[str, Frame] = {}
    for _ in range(5):
        for client_msg_id in frames.keys() - acks.keys():
            client.send(
                {
                    "action": "sendmessage",
                    "text": frames[client_msg_id],
                    "clientMsgId": client_msg_id,
                    **fields,
                }
            )
        for client_msg_id in frames.keys() - acks.keys():
            with contextlib.suppress(AssertionError):
                acks[client_msg_id] = client.wait_type("ack", timeout=5, clientMsgId=client_msg_id)
        if len(acks) == len(frames):
            return list(acks.values())
    raise AssertionError(f"no ack after five tries for {sorted(frames.keys() - acks.keys())}")


def kill(client: ChatClient) -> None:
    """Drop the TCP connection under the WebSocket: no close frame, as when a phone loses signal."""
    client.socket.socket.shutdown(socket.SHUT_RDWR)
    client.close()


def test_socket_killed_mid_sync_resumes_from_the_last_cursor(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Killed after a few replayed frames, the client reconnects, syncs from its cursor, misses nothing."""
    victim = stack.create_user("victim")
    senders = [stack.create_user("sender") for _ in range(3)]
    first = open_client(victim)
    since = first.say("going offline")["cursor"]
    first.close()
    acks = []
    for sender in senders:
        client = open_client(sender)
        acks += send_all(client, [f"public {n}" for n in range(40)])
        acks += send_all(client, [f"private {n}" for n in range(10)], to=victim.username)
    replaying = open_client(victim)
    replaying.send({"action": "sync", "since": since, "limit": 500})
    while len([f for f in replaying.frames if f.get("type") == "message"]) < 10:
        replaying.receive(timeout=10)
    kill(replaying)
    assert replaying.cursor is not None
    resumed = open_client(victim)
    received = {
        f["id"] for f in replaying.frames + resumed.sync_all(replaying.cursor) if f["type"] == "message"
    }
    assert {ack["id"] for ack in acks} <= received


@pytest.fixture(scope="module")
def throttled_stack() -> Iterator[RunningStack]:
    """A local stack whose management API answers 20% of all calls with 429 LimitExceededException."""
    with running_stack(log_level="ERROR", management_throttle_rate=0.2) as running:
        yield running


def test_management_api_throttling_a_share_of_calls_loses_nothing(throttled_stack: RunningStack) -> None:
    """Under steady 429s, every acked message reaches every session of every user, live or by sync."""
    users = [throttled_stack.create_user("storm") for _ in range(3)]
    sessions = [ChatClient.connect(throttled_stack, user) for user in users for _ in range(2)]
    try:
        for session in sessions:
            session.sync_all(None, limit=1)  # a cursor from before the storm
        start = [session.cursor for session in sessions]
        sent: list[tuple[Frame, set[str] | None]] = []  # an ack, and who may see it (None: everyone)
        for n, session in enumerate(sessions):
            sent += [(ack, None) for ack in send_all(session, [f"storm {n}.{k}" for k in range(8)])]
            to = users[(n // 2 + 1) % len(users)]
            [ack] = send_all(session, [f"whisper {n}"], to=to.username)
            sent.append((ack, {session.username, to.username}))
        for session, since in zip(sessions, start, strict=True):
            session.drain(quiet_for=0.5)
            replayed = session.sync_all(since)
            seen = {f["id"] for f in session.frames + replayed if f["type"] == "message"}
            due = {ack["id"] for ack, audience in sent if audience is None or session.username in audience}
            assert due <= seen
            assert not seen - {ack["id"] for ack, _ in sent}  # nor anything it may not see
    finally:
        for session in sessions:
            session.close()
