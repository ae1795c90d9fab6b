"""The ``chat`` command open across a restart of the local stack: it reconnects on its own, and when
its account is gone (a stack started afresh) it says so in words: a terminal asks whether to sign
up again and then sends what was typed; a script exits 3."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from clients.cli.auth import AccountGone, CognitoAuth
from clients.cli.config import load_from_url
from clients.cli.protocol import ChatState
from clients.cli.session import ChatSession
from local_stack.testing import RunningStack, running_stack
from tests.clients.peers import PASSWORD, Peer
from tests.clients.restarts import start_keeping_accounts, started_afresh
from tests.clients.test_cli_commands import REPO_ROOT, Terminal, chat_command


@pytest.fixture(scope="module")
def restartable() -> Iterator[RunningStack]:
    with running_stack() as stack:
        yield stack


def test_a_script_whose_account_is_gone_exits_3_with_words(restartable, new_username) -> None:
    """`chat` reading lines from a pipe, its account gone after a fresh start, exits 3 and says why."""
    user = new_username("script")
    process = subprocess.Popen(
        chat_command(restartable, user),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "CHAT_PASSWORD": PASSWORD},
    )
    try:
        assert process.stdin is not None
        listener = Peer(load_from_url(restartable.http_url), new_username("listener"))
        process.stdin.write("first line\n")
        process.stdin.flush()
        listener.wait_for_message("first line", timeout=30)
        listener.close()
        started_afresh(restartable)
        process.stdin.write("second line\n")
        process.stdin.flush()
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 3, stderr
    assert f"the chat server was reset: the account {user} no longer exists there" in stderr
    assert "run chat again to sign up anew" in stderr
    assert "Exception" not in stderr and "Traceback" not in stderr, stderr


def test_a_terminal_whose_account_is_gone_offers_to_sign_up_and_sends_what_was_typed(
    restartable, new_username
) -> None:
    """On a terminal: after a fresh start it says the account is gone and asks; yes signs up again with
    the same password, and the line typed while the stack was down reaches the others."""
    me = new_username("tty")
    terminal = Terminal(chat_command(restartable, me))
    try:
        terminal.wait_for(f"connected as {me}", timeout=30)
        restartable.stop()
        terminal.wait_for("reconnecting in")
        terminal.type("typed while the server was down")
        started_afresh(restartable)
        terminal.wait_for(f"The chat server was reset: the account {me} no longer exists there.", timeout=60)
        terminal.wait_for(f"Sign up again as {me} with the same password? [Y/n]")
        listener = Peer(load_from_url(restartable.http_url), new_username("listener"))
        try:
            terminal.type("y")
            assert listener.wait_for_message("typed while the server was down", timeout=30)["from"] == me
        finally:
            listener.close()
        assert "Exception" not in terminal.text()
        terminal.type("/quit")
        assert terminal.process.wait(20) == 0
    finally:
        terminal.close()


def test_a_session_open_across_a_restart_carries_on(restartable, new_username) -> None:
    """With its accounts kept, a ChatSession reconnects by itself after a restart and sends what waited."""
    asyncio.run(_carry_on(restartable, new_username("carol")))


async def _carry_on(stack: RunningStack, me: str) -> None:
    config = load_from_url(stack.http_url)
    events: list[dict[str, Any]] = []
    session = ChatSession(
        config,
        CognitoAuth(config, me, PASSWORD),
        ChatState(me),
        events.append,
        reload_config=lambda: load_from_url(stack.http_url),
    )
    runner = asyncio.create_task(session.run())
    try:
        await _until(lambda: session.connection_state == "online")
        await asyncio.to_thread(stack.stop)
        await _until(lambda: session.connection_state == "offline")
        pending = asyncio.create_task(session.send("sent after the restart"))
        kept = await asyncio.to_thread(start_keeping_accounts, stack)
        if not kept:
            pending.cancel()
            pytest.skip("this stack starts with new accounts on every start")
        ack = await asyncio.wait_for(pending, 60)
        assert ack["type"] == "ack"
    finally:
        await session.stop()
        await asyncio.gather(runner, return_exceptions=True)


def test_a_session_without_a_question_raises_account_gone(restartable, new_username) -> None:
    """A ChatSession with no one to ask ends with AccountGone (plain words), its message still queued."""
    asyncio.run(_gone_without_asking(restartable, new_username("dave")))


async def _gone_without_asking(stack: RunningStack, me: str) -> None:
    config = load_from_url(stack.http_url)
    state = ChatState(me)
    session = ChatSession(
        config,
        CognitoAuth(config, me, PASSWORD),
        state,
        lambda _: None,
        reload_config=lambda: load_from_url(stack.http_url),
    )
    runner = asyncio.create_task(session.run())
    pending: asyncio.Task[Any] | None = None
    try:
        await _until(lambda: session.connection_state == "online")
        await asyncio.to_thread(stack.stop)
        await _until(lambda: session.connection_state == "offline")
        pending = asyncio.create_task(session.send("not lost"))
        await asyncio.sleep(0)
        await asyncio.to_thread(started_afresh, stack)
        with pytest.raises(AccountGone) as gone:
            await asyncio.wait_for(runner, 60)
        assert gone.value.reset
        assert str(gone.value) == f"the chat server was reset: the account {me} no longer exists there"
        assert [m.text for m in state.outbox.values()] == ["not lost"]
    finally:
        if pending is not None:
            pending.cancel()
        await session.stop()
        await asyncio.gather(runner, return_exceptions=True)


async def _until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
