"""docs/protocol.md end to end: real clients on real sockets against the running local stack.

Users get fresh names per test, so the shared stack's other traffic never matches what a test
waits for; frames are matched by sender, text or ``clientMsgId``, never by position alone.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from local_stack_client import PRESENCE_GRACE, Frame, close_frame_after_frames, connection_id_of
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from local_stack.testing import RunningStack, running_stack
from tests.support.chat_client import ChatClient, OpenClient


def text_id() -> str:
    return uuid.uuid4().hex[:12]


def is_message(text: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("type") == "message" and frame.get("text") == text


def assert_never(client: ChatClient, matches: Callable[[Frame], bool], wait: float = 0.5) -> None:
    client.drain(quiet_for=wait)
    assert not [frame for frame in client.frames if matches(frame)]


def send_message(client: ChatClient, text: str, **fields: object) -> Frame:
    """Send and return the ack."""
    client_msg_id = fields.pop("clientMsgId", None) or f"m-{text_id()}"
    client.send({"action": "sendmessage", "text": text, "clientMsgId": client_msg_id, **fields})
    return client.wait_type("ack", clientMsgId=client_msg_id)


# -- the simplest client


def test_simplest_script_gets_pong(stack: RunningStack, capsys: pytest.CaptureFixture[str]) -> None:
    """Connect, send the bare text ``ping``, print what comes back: ``{"type":"pong"}``."""
    token = stack.create_user("script").access_token
    with connect(stack.connect_url(token)) as websocket:
        websocket.send("ping")
        for frame in websocket:
            print(frame)
            if "pong" in frame:
                break
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Other users coming and going on the shared stack may say so first.
    assert printed[-1] == {"type": "pong"}
    assert all(frame["type"] == "presence" for frame in printed[:-1])


# -- public, private, /msg


def test_public_message_reaches_every_connection(stack: RunningStack, open_client: OpenClient) -> None:
    """A public message goes to every open connection; the sender also gets its ack."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, alice_2, bob_1 = open_client(alice), open_client(alice), open_client(bob)
    text = f"hello all {text_id()}"
    ack = send_message(alice_1, text)
    assert ack["duplicate"] is False and ack["id"] and ack["cursor"]
    for client in (alice_1, alice_2, bob_1):
        frame = client.wait_for(is_message(text))
        assert (frame["from"], frame["to"], frame["id"], frame["cursor"]) == (
            alice.username,
            None,
            ack["id"],
            ack["cursor"],
        )
        assert frame["sentAt"].endswith("Z") and frame["clientMsgId"] == ack["clientMsgId"]


def test_private_message_reaches_recipient_and_senders_other_sessions(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Private: every connection of ``to`` and every other connection of ``from``; nobody else."""
    alice, bob, carol = stack.create_user("alice"), stack.create_user("bob"), stack.create_user("carol")
    alice_1, alice_2, bob_1, carol_1 = (
        open_client(alice),
        open_client(alice),
        open_client(bob),
        open_client(carol),
    )
    text = f"psst {text_id()}"
    send_message(alice_1, text, to=bob.username)
    for client in (bob_1, alice_2):
        frame = client.wait_for(is_message(text))
        assert (frame["from"], frame["to"]) == (alice.username, bob.username)
    assert_never(alice_1, is_message(text))
    assert_never(carol_1, is_message(text))


def test_msg_command_is_a_private_message(stack: RunningStack, open_client: OpenClient) -> None:
    """``/msg <user> <text>`` is the same as ``to=<user>``, ``text=<text>``."""
    alice, bob, carol = stack.create_user("alice"), stack.create_user("bob"), stack.create_user("carol")
    alice_1, bob_1, carol_1 = open_client(alice), open_client(bob), open_client(carol)
    text = f"via command {text_id()}"
    send_message(alice_1, f"/msg {bob.username} {text}")
    frame = bob_1.wait_for(is_message(text))
    assert (frame["from"], frame["to"]) == (alice.username, bob.username)
    assert_never(carol_1, is_message(text))


# -- presence and who


def test_presence_once_per_user_not_per_tab(stack: RunningStack, open_client: OpenClient) -> None:
    """Online when the first connection opens, offline once the last has stayed closed for the
    grace; tabs in between say nothing; every presence frame says when (``at``)."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    bob_1 = open_client(bob)

    def about_alice(frame: Frame) -> bool:
        return frame.get("type") == "presence" and frame.get("user") == alice.username

    alice_1 = ChatClient.connect(stack, alice)
    assert bob_1.wait_for(about_alice)["online"] is True
    alice_2 = ChatClient.connect(stack, alice)
    bob_1.send({"action": "who"})
    assert alice.username in bob_1.wait_type("who")["users"]
    alice_1.close()
    bob_1.drain(quiet_for=0.7)
    assert [f["online"] for f in bob_1.frames if about_alice(f)] == [True]
    alice_2.close()
    closed = time.monotonic()
    offline = bob_1.wait_for(lambda f: about_alice(f) and f["online"] is False)
    assert time.monotonic() - closed >= PRESENCE_GRACE - 0.5
    assert [f["online"] for f in bob_1.frames if about_alice(f)] == [True, False]
    online = next(f for f in bob_1.frames if about_alice(f))
    assert online["at"] < offline["at"]
    bob_1.send({"action": "who"})
    users = bob_1.wait_for(lambda f: f.get("type") == "who" and alice.username not in f["users"])["users"]
    assert users == sorted(users) and bob.username in users


def test_reconnect_within_the_grace_is_silent(stack: RunningStack, open_client: OpenClient) -> None:
    """A user whose only socket closes and reopens at once (the 2-hour limit) causes no presence
    frame at all, and ``who`` lists them throughout."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    bob_1 = open_client(bob)

    def about_alice(frame: Frame) -> bool:
        return frame.get("type") == "presence" and frame.get("user") == alice.username

    alice_1 = ChatClient.connect(stack, alice)
    bob_1.wait_for(about_alice)
    alice_1.close()
    bob_1.send({"action": "who"})
    assert alice.username in bob_1.wait_type("who")["users"]
    open_client(alice).send({"action": "ping"})
    bob_1.drain(quiet_for=PRESENCE_GRACE + 1.5)
    assert [f["online"] for f in bob_1.frames if about_alice(f)] == [True]
    seen = len(bob_1.frames)
    bob_1.send({"action": "who"})
    assert alice.username in bob_1.wait_for(lambda f: f.get("type") == "who", after=seen)["users"]


# -- durability and resume


def test_private_messages_sent_while_offline_arrive_on_reconnect(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Messages to an offline user are replayed by ``sync`` from the cursor it last held."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    bob_1 = open_client(bob)
    alice_1 = open_client(alice)
    before = f"before {text_id()}"
    send_message(alice_1, before, to=bob.username)
    last_seen = bob_1.wait_for(is_message(before))
    bob_1.close()
    missed = [f"while away {i} {text_id()}" for i in range(3)]
    for text in missed:
        send_message(alice_1, text, to=bob.username)
    bob_2 = open_client(bob)
    bob_2.send({"action": "sync", "since": last_seen["cursor"]})
    synced = bob_2.wait_type("synced")
    replayed = [
        f["text"] for f in bob_2.frames if f.get("type") == "message" and f.get("from") == alice.username
    ]
    assert [t for t in replayed if t in missed] == missed
    assert synced["complete"] is True and synced["more"] is False and synced["cursor"]


def test_sync_with_last_cursor_after_dropped_connection(stack: RunningStack, open_client: OpenClient) -> None:
    """A dropped connection resumes with one cursor: everything after it, oldest first, then synced."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, bob_1 = open_client(alice), open_client(bob)
    first = f"first {text_id()}"
    send_message(bob_1, first)
    cursor = alice_1.wait_for(is_message(first))["cursor"]
    alice_1.socket.close_socket()  # the network goes away: no close frame
    later = [f"later {i} {text_id()}" for i in range(3)]
    for text in later:
        send_message(bob_1, text)
    alice_2 = open_client(alice)
    alice_2.send({"action": "sync", "since": cursor})
    alice_2.wait_type("synced")
    texts = [f["text"] for f in alice_2.frames if f.get("type") == "message"]
    assert [t for t in texts if t in later] == later
    assert first not in texts[len(texts) - len(later) :]


def test_batched_sync_over_the_gateway_packs_the_replay(stack: RunningStack, open_client: OpenClient) -> None:
    """`batch: true` over real sockets: only messages frames, each within the gateway's 32 KB frame,
    the missed messages in order, then synced; the same sync without it still sends message frames."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, bob_1 = open_client(alice), open_client(bob)
    first = f"first {text_id()}"
    send_message(bob_1, first)
    cursor = alice_1.wait_for(is_message(first))["cursor"]
    alice_1.socket.close_socket()
    later = [f"later {i} {text_id()} " + "ß" * 3_000 for i in range(8)]  # 6 KB each: two frames
    for text in later:
        send_message(bob_1, text)
    alice_2 = open_client(alice)
    alice_2.send({"action": "sync", "since": cursor, "batch": True})
    alice_2.wait_type("synced")
    packed = [f for f in alice_2.frames if f.get("type") == "messages"]
    assert len(packed) >= 2 and not [f for f in alice_2.frames if f.get("type") == "message"]
    assert all(
        len(json.dumps(f, ensure_ascii=False, separators=(",", ":")).encode()) <= 32 * 1024 for f in packed
    )
    texts = [m["text"] for f in packed for m in f["messages"]]
    assert [t for t in texts if t in later] == later
    alice_3 = open_client(alice)
    alice_3.send({"action": "sync", "since": cursor})
    alice_3.wait_type("synced")
    assert [f["text"] for f in alice_3.frames if f.get("type") == "message" and f["text"] in later] == later


def test_sync_without_cursor_returns_latest_visible(stack: RunningStack, open_client: OpenClient) -> None:
    """Without ``since``, sync replays the latest ``limit`` messages the user may see."""
    alice, bob, carol = stack.create_user("alice"), stack.create_user("bob"), stack.create_user("carol")
    alice_1, carol_1 = open_client(alice), open_client(carol)
    secret = f"for bob only {text_id()}"
    send_message(alice_1, secret, to=bob.username)
    public = f"for all {text_id()}"
    send_message(alice_1, public)
    carol_1.send({"action": "sync", "limit": 5})
    carol_1.wait_type("synced")
    texts = [f["text"] for f in carol_1.frames if f.get("type") == "message"]
    assert public in texts and secret not in texts


def test_resend_with_same_client_msg_id_is_idempotent(stack: RunningStack, open_client: OpenClient) -> None:
    """The same clientMsgId again: the original id with duplicate=true, and nothing delivered twice."""
    alice, bob = stack.create_user("alice"), stack.create_user("bob")
    alice_1, bob_1 = open_client(alice), open_client(bob)
    text = f"exactly once {text_id()}"
    first = send_message(alice_1, text, clientMsgId="retry-1")
    alice_1.frames.clear()
    again = send_message(alice_1, text, clientMsgId="retry-1")
    assert (again["id"], again["duplicate"], first["duplicate"]) == (first["id"], True, False)
    bob_1.wait_for(is_message(text))
    bob_1.drain(quiet_for=0.7)
    assert len([f for f in bob_1.frames if is_message(text)(f)]) == 1


# -- errors


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "invalid_json"),
        ("{", "invalid_json"),
        ('{"action":"dance"}', "unknown_action"),
        ('{"no":"action"}', "unknown_action"),
        ('{"action":"sendmessage"}', "invalid_message"),
        ('{"action":"sendmessage","text":"   "}', "invalid_message"),
        ('{"action":"sendmessage","text":5}', "invalid_message"),
        ('{"action":"sendmessage","text":"hi","clientMsgId":"has space"}', "invalid_message"),
        ('{"action":"sync","limit":501}', "invalid_message"),
        ('{"action":"sync","since":"not-a-cursor"}', "invalid_message"),
        ('{"action":"sync","batch":"yes"}', "invalid_message"),
        (json.dumps({"action": "sendmessage", "text": "x" * 4001}), "text_too_long"),
        ('{"action":"sendmessage","text":"hi","to":"nobody-here-0000"}', "unknown_user"),
    ],
)
def test_error_codes_keep_the_connection_open(
    stack: RunningStack, open_client: OpenClient, frame: str, code: str
) -> None:
    """Each bad frame gets an ``error`` with its code and a message; the connection stays open."""
    client = open_client(stack.create_user("errors"))
    client.send(frame)
    error = client.wait_type("error")
    assert error["code"] == code and error["message"] and "clientMsgId" in error
    client.send("ping")
    client.wait_type("pong")


def test_error_echoes_a_valid_client_msg_id(stack: RunningStack, open_client: OpenClient) -> None:
    """An error about a send names the clientMsgId the client gave."""
    client = open_client(stack.create_user("errors"))
    client.send({"action": "sendmessage", "text": "x" * 4001, "clientMsgId": "long-1"})
    assert client.wait_type("error")["clientMsgId"] == "long-1"


def test_rate_limited_after_the_per_minute_allowance(stack: RunningStack, open_client: OpenClient) -> None:
    """A burst of 40 sends (the default budget: 120 a minute, 30 at once) gets ``rate_limited``
    for the ones past it, each with its clientMsgId; the accepted ones are acked."""
    client = open_client(stack.create_user("chatty"))
    for n in range(40):
        client.send({"action": "sendmessage", "text": f"n{n}", "clientMsgId": f"b-{n}"})

    def answer_to(client_msg_id: str) -> Callable[[Frame], bool]:
        return lambda f: f.get("clientMsgId") == client_msg_id and f.get("type") in ("ack", "error")

    answers = [client.wait_for(answer_to(f"b-{n}"), timeout=20) for n in range(40)]
    refused = {f["clientMsgId"] for f in answers if f["type"] == "error" and f["code"] == "rate_limited"}
    acked = {f["clientMsgId"] for f in answers if f["type"] == "ack"}
    assert refused and len(acked) >= 30 and refused | acked == {f"b-{n}" for n in range(40)}


# -- handshake, limits, management API


def test_bad_token_refuses_the_handshake(stack: RunningStack) -> None:
    """A forged token never opens a socket."""
    with pytest.raises(InvalidStatus) as refused:
        connect(stack.connect_url("forged.token.value"))
    assert refused.value.response.status_code in (401, 403)


def test_frame_over_the_limit_closes_with_1009(stack: RunningStack) -> None:
    """A 40 KB frame closes the socket with 1009."""
    with connect(stack.connect_url(stack.create_user("big").access_token)) as websocket:
        websocket.send(json.dumps({"action": "sendmessage", "text": "b" * 40_000}))
        assert close_frame_after_frames(websocket).code == 1009


def test_management_api_get_then_410_after_close(stack: RunningStack) -> None:
    """GET describes an open connection; once it is closed the API answers 410 GoneException."""
    user = stack.create_user("managed")
    api = stack.management_client()
    with connect(stack.connect_url(user.access_token), user_agent_header="e2e-agent"):
        connection_id = connection_id_of(stack, user.username)
        assert api.get_connection(ConnectionId=connection_id)["Identity"]["UserAgent"] == "e2e-agent"
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"pong"}')


# -- timeouts, on a stack of their own


@pytest.fixture(scope="module")
def short_stack() -> Iterator[RunningStack]:
    """A second stack whose idle timeout is 1 s and whose connections live 3 s at most."""
    with running_stack(idle_timeout=1.0, max_lifetime=3.0, record_events=True) as running:
        yield running


def test_idle_timeout_closes_with_1001_and_runs_disconnect(short_stack: RunningStack) -> None:
    """An idle socket is closed with 1001 "Going away"; $disconnect removes its record and presence."""
    user = short_stack.create_user("idle")
    with connect(short_stack.connect_url(user.access_token)) as websocket:
        connection_id = connection_id_of(short_stack, user.username)
        close = close_frame_after_frames(websocket, timeout=5)
    assert (close.code, close.reason) == (1001, "Going away")
    table = short_stack.table_names["Connections"]
    dynamodb = short_stack.aws_client("dynamodb")
    deadline = time.monotonic() + 5
    while dynamodb.get_item(TableName=table, Key={"connectionId": {"S": connection_id}}).get("Item"):
        assert time.monotonic() < deadline, "the connection record outlived $disconnect"
        time.sleep(0.1)


def test_connection_lifetime_limit_closes_busy_sockets(short_stack: RunningStack) -> None:
    """Even a socket that keeps pinging is closed at the lifetime limit (3 s here)."""
    user = short_stack.create_user("busy")
    started = time.monotonic()
    with (
        connect(short_stack.connect_url(user.access_token)) as websocket,
        pytest.raises(ConnectionClosed) as closed,
    ):
        while True:
            websocket.send("ping")
            websocket.recv(timeout=5)
            time.sleep(0.4)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert 2.5 < time.monotonic() - started < 6


def test_internal_error_when_the_history_table_is_gone() -> None:
    """A storage failure is ``internal_error`` to the client, and the connection stays open."""
    with running_stack() as broken:
        client = ChatClient.connect(broken, broken.create_user("unlucky"))
        try:
            broken.aws_client("dynamodb").delete_table(TableName=broken.table_names["Messages"])
            client.send({"action": "sendmessage", "text": "into the void", "clientMsgId": "void-1"})
            error = client.wait_type("error")
            assert error["code"] == "internal_error" and error["message"]
            client.send("ping")
            client.wait_type("pong")
        finally:
            client.close()
