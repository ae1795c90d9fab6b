"""The ``chat`` command and protocol 1.1's conversations, on a pty against the local stack: unread
counts on connect, /history paging back, implicit read receipts, and typing both ways."""

from __future__ import annotations

from typing import Any

from clients.cli.auth import CognitoAuth
from tests.clients.peers import PASSWORD, Peer
from tests.clients.test_cli_commands import Terminal, chat_command, run_chat


def send_and_wait(sender: Peer, text: str, to: str | None = None) -> dict[str, Any]:
    """Send one message and wait for its ack, so the order of several is the order sent."""
    frame: dict[str, Any] = {"action": "sendmessage", "text": text, "clientMsgId": f"c{len(sender.frames)}"}
    if to is not None:
        frame["to"] = to
    sender.send(frame)
    return sender.wait_for(lambda f: f.get("type") == "ack" and f.get("clientMsgId") == frame["clientMsgId"])


def reads_by(peer: Peer, reader: str) -> list[dict[str, Any]]:
    return [f for f in peer.frames if f.get("type") == "read" and f.get("user") == reader]


def test_a_terminal_shows_unread_pages_back_and_reports_what_it_showed(
    stack, chat_config, peer, new_username
) -> None:
    """On connect the DM's unread count prints; what is shown is read with one `read` for the batch;
    /history USER prints the older messages oldest first and says when there are none left."""
    me, other = new_username("tty"), new_username("bob")
    CognitoAuth(chat_config, me, PASSWORD).access_token()  # the account exists before bob writes
    bob = peer(other)
    send_and_wait(bob, "public before")
    acks = [send_and_wait(bob, f"dm {n}", to=me) for n in range(1, 6)]
    terminal = Terminal(chat_command(stack, me, "--history", "2"))
    try:
        terminal.wait_for(f"* 5 unread from {other}")
        terminal.wait_for(f"[from {other}] dm 5")
        # The two DMs shown are reported read together, up to the newest: a "seen" receipt for bob.
        seen = bob.wait_for(lambda f: f.get("type") == "read" and f.get("user") == me)
        assert (seen["with"], seen["upTo"]) == (other, acks[-1]["id"])
        terminal.type(f"/history {other}")
        terminal.wait_for(f"* no older messages with {other}")
        text = terminal.text()
        page = text[text.index(f"* earlier with {other}:") : text.index(f"* no older messages with {other}")]
        positions = [page.index(f"[from {other}] dm {n}") for n in (1, 2, 3)]
        assert positions == sorted(positions), page
        assert "dm 4" not in page and "dm 5" not in page, page  # shown already: not in the older page
        terminal.type("/history")
        terminal.wait_for(f"{other}: public before")
        live = send_and_wait(bob, "dm 6", to=me)
        terminal.wait_for(f"[from {other}] dm 6")
        bob.wait_for(lambda f: f.get("type") == "read" and f.get("upTo") == live["id"])
        assert [f["upTo"] for f in reads_by(bob, me)] == [acks[-1]["id"], live["id"]]  # none for old pages
        terminal.type("/quit")
        assert terminal.process.wait(20) == 0
    finally:
        terminal.close()
    # From a pipe nothing is shown first: the first page is the latest, the second finds no more.
    piped = run_chat(stack, me, stdin=f"/history {other}\n/history {other}\n")
    assert piped.returncode == 0, piped.stderr
    assert f"* earlier with {other}:" in piped.stdout and piped.stdout.count(f"[from {other}] dm 6") == 1
    assert piped.stdout.count(f"* no older messages with {other}") == 2, piped.stdout


def test_typing_shows_on_the_terminal_and_a_private_line_being_typed_tells_its_recipient(
    stack, chat_config, peer, new_username
) -> None:
    """Another user's `typing` prints "bob is typing…"; typing `/msg bob …` sends `typing` to bob."""
    me, other = new_username("tty"), new_username("bob")
    CognitoAuth(chat_config, me, PASSWORD).access_token()
    bob = peer(other)
    terminal = Terminal(chat_command(stack, me))
    try:
        terminal.wait_for(f"connected as {me}")
        bob.send({"action": "typing", "to": me})
        terminal.wait_for(f"* {other} is typing…")
        terminal.write(f"/msg {other} hel")
        assert bob.wait_for(lambda f: f.get("type") == "typing")["from"] == me
        terminal.type("lo")
        assert bob.wait_for_message("hello")["from"] == me
        terminal.type("/quit")
        assert terminal.process.wait(20) == 0
    finally:
        terminal.close()
