"""Security boundaries over real sockets: private messages reach only their two users, a cursor
carries no identity, tokens and passwords never reach a log line, and one user's flood is refused
with rate_limited without touching anyone else. (Stage throttling, cdk-nag and per-function IAM
are asserted on the synthesized template in tests/infra.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from local_stack.testing import RunningStack, running_stack
from tests.support.chat_client import ChatClient, OpenClient, handshake_status, new_client_msg_id


def message_ids(client: ChatClient) -> set[str]:
    return {f["id"] for f in client.frames if f.get("type") == "message"}


def test_private_message_reaches_only_its_two_users(stack: RunningStack, open_client: OpenClient) -> None:
    """Live and by sync, a private message reaches the sender's and recipient's sessions and no one else's."""
    alice, bob, mallory = (stack.create_user(name) for name in ("alice", "bob", "mallory"))
    alice_1, alice_2, bob_1, mallory_1 = (
        open_client(alice),
        open_client(alice),
        open_client(bob),
        open_client(mallory),
    )
    before = mallory_1.say("just looking")["cursor"]
    secret = alice_1.say("for bob only", to=bob.username)
    bob_1.wait_type("message", id=secret["id"])
    alice_2.wait_type("message", id=secret["id"])
    mallory_1.drain(quiet_for=0.5)
    replayed = mallory_1.sync_all(before) + mallory_1.sync_all(None)
    assert secret["id"] not in message_ids(mallory_1) | {f["id"] for f in replayed}


def test_a_cursor_taken_from_another_user_reveals_nothing_of_theirs(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """A cursor carries no identity: syncing with Bob's cursor replays only what Mallory may see."""
    alice, bob, mallory = (stack.create_user(name) for name in ("alice", "bob", "mallory"))
    alice_1, bob_1, mallory_1 = open_client(alice), open_client(bob), open_client(mallory)
    bobs_cursor = bob_1.say("a cursor to steal")["cursor"]
    secret = alice_1.say("between alice and bob", to=bob.username)
    bob_1.wait_type("message", id=secret["id"])
    replayed = mallory_1.sync_all(bobs_cursor)
    assert secret["id"] not in {f["id"] for f in replayed}
    assert all(f["to"] in (None, mallory.username) or f["from"] == mallory.username for f in replayed)


@pytest.fixture(scope="module")
def chatty_stack() -> Iterator[RunningStack]:
    """A stack logging at DEBUG, so every log line the handlers can write is written."""
    with running_stack(log_level="DEBUG") as running:
        yield running


def test_no_token_or_password_in_any_log_line(chatty_stack: RunningStack) -> None:
    """Sign-up, sign-in, connect, send, and refused handshakes: no token or password in the stack's output."""
    password = "Leak-Canary-Pw-7731"
    user = chatty_stack.create_user("canary", password=password)
    with contextlib.closing(ChatClient.connect(chatty_stack, user)) as client:
        client.say("hello from the canary")
    header, payload, signature = user.access_token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    assert handshake_status(chatty_stack.connect_url(tampered)) == 403
    assert handshake_status(chatty_stack.connect_url(user.id_token)) == 403
    log = chatty_stack.log()
    # The console's lines and the handlers' Powertools lines are both there.
    assert "$connect" in log and "refused: invalid token" in log and '"message":"allowed"' in log
    secrets = [password, user.access_token, user.id_token, user.refresh_token, signature, signature[::-1]]
    leaked = [n for n, secret in enumerate(secrets) if secret in log]
    assert not leaked, f"secrets {leaked} appear in the log"


def test_flood_is_rate_limited_and_others_are_unaffected(
    stack: RunningStack, open_client: OpenClient
) -> None:
    """Past the per-user send budget, sends get rate_limited (clientMsgId echoed); others still send."""
    flooder, bystander = stack.create_user("flooder"), stack.create_user("bystander")
    flood, calm = open_client(flooder), open_client(bystander)
    refused = None
    for _ in range(2 * 120 + 1):  # two minutes' budget: a sender waiting for each ack overflows it
        client_msg_id = new_client_msg_id()
        flood.send(
            {"action": "sendmessage", "text": "spam", "to": bystander.username, "clientMsgId": client_msg_id}
        )
        answer = flood.next_answer()
        if answer["type"] == "error":
            refused = answer
            break
        assert answer["type"] == "ack"
    assert refused is not None and (refused["code"], refused["clientMsgId"]) == (
        "rate_limited",
        client_msg_id,
    )
    assert client_msg_id not in {
        f.get("clientMsgId") for f in calm.drain(quiet_for=0.3) if f["type"] == "message"
    }
    assert calm.say("still fine")["duplicate"] is False


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "ping"},
        {"action": "who"},
        {"action": "sync", "limit": 500},
        {"action": "sendmessage", "text": "spam"},
        "ping",
        {"action": "shout"},
    ],
    ids=["ping", "who", "sync-500", "sendmessage", "bare-ping", "unknown-action"],
)
def test_a_connection_that_keeps_flooding_is_closed(
    stack: RunningStack, open_client: OpenClient, frame: dict[str, object] | str
) -> None:
    """Frames sent without waiting: past the budget each is told rate_limited, then the server closes
    the socket (DELETE @connections, $disconnect runs); the user's other connection and others go on."""
    flooder, bystander = stack.create_user("flooder"), stack.create_user("bystander")
    flood, other_tab, calm = open_client(flooder), open_client(flooder), open_client(bystander)
    for _ in range(120):
        flood.send(frame)
    assert flood.closed_code(timeout=30) == 1000
    refusals = [f for f in flood.frames if f.get("type") == "error" and f["code"] == "rate_limited"]
    assert 20 <= len(refusals) < 120  # told (FLOOD_CLOSE_AFTER, 20) times, then closed
    if isinstance(frame, dict) and frame["action"] == "sendmessage":  # that budget is spent for a while
        other_tab.send({"action": "ping"})
        assert other_tab.next_answer() == {"type": "pong"}
    else:
        other_tab.send({"action": "sendmessage", "text": "from the other tab", "to": bystander.username})
        assert calm.wait_type("message", text="from the other tab")["from"] == flooder.username
    assert calm.say("still fine")["duplicate"] is False
    calm.send({"action": "who"})
    assert flooder.username in calm.wait_type("who")["users"]  # online by the other tab only
