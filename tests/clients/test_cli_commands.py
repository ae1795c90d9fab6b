"""The ``chat`` command against the running local stack: send, stdin, errors, interactive, resume."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from clients.cli.auth import CognitoAuth
from clients.cli.config import ChatConfig, load_from_url
from clients.cli.protocol import Backoff, ChatState
from clients.cli.session import ChatSession
from tests.clients.peers import PASSWORD, Peer

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSI_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])")


def chat_command(stack: Any, user: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "clients.cli", "--url", stack.http_url, "--user", user, *args]


def run_chat(stack: Any, user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chat_command(stack, user, *args),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO_ROOT,
        env={**os.environ, "CHAT_PASSWORD": PASSWORD},
        check=False,
    )


def test_send_exits_zero_and_the_message_reaches_a_listener(stack, peer, new_username) -> None:
    """`chat send TEXT` signs up, sends, waits for the ack and exits 0; others get the message."""
    listener = peer(new_username("bob"))
    sender = new_username("alice")
    result = run_chat(stack, sender, "send", "hello", "from", "a", "script")
    assert result.returncode == 0, result.stderr
    frame = listener.wait_for_message("hello from a script")
    assert frame["from"] == sender and frame["to"] is None


def test_send_to_a_user_is_private(stack, peer, new_username) -> None:
    """`chat send --to USER` reaches that user as a private message."""
    recipient = new_username("bob")
    listener = peer(recipient)
    result = run_chat(stack, new_username("alice"), "send", "--to", recipient, "just for you")
    assert result.returncode == 0, result.stderr
    assert listener.wait_for_message("just for you")["to"] == recipient


def test_stdin_lines_are_sent_in_order(stack, peer, new_username) -> None:
    """Each stdin line is a message (/msg is private); the command exits 0 at EOF after the acks."""
    recipient = new_username("bob")
    listener = peer(recipient)
    lines = f"first line\n\nsecond line\n/msg {recipient} third, privately\n"
    result = run_chat(stack, new_username("alice"), stdin=lines)
    assert result.returncode == 0, result.stderr
    texts = ["first line", "second line", "third, privately"]
    frames = [listener.wait_for_message(text) for text in texts]
    assert [frame["to"] for frame in frames] == [None, None, recipient]
    # docs/protocol.md: "Live frames from one sender arrive in the order sent".
    received = [frame["text"] for frame in listener.frames if frame.get("type") == "message"]
    assert [text for text in received if text in texts] == texts, received


def test_an_error_frame_gives_a_nonzero_exit_with_its_code(stack, new_username) -> None:
    """A send the server refuses (no such user) exits 1 and prints the protocol's error code."""
    result = run_chat(stack, new_username("alice"), "send", "--to", "nobody-by-this-name", "hello?")
    assert result.returncode == 1
    assert "unknown_user" in result.stderr


def test_a_wrong_password_exits_before_connecting(stack, new_username) -> None:
    """A taken username with another password is refused at sign-in, not silently re-registered."""
    user = new_username("alice")
    assert run_chat(stack, user, "send", "hi").returncode == 0
    result = subprocess.run(
        chat_command(stack, user, "send", "hi"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "CHAT_PASSWORD": "not-the-password-1"},
        check=False,
    )
    assert result.returncode == 3
    assert "NotAuthorized" in result.stderr and "or that name is taken" in result.stderr


def test_without_a_password_or_a_terminal_it_says_what_is_missing_and_exits_3(
    stack, new_username, tmp_path
) -> None:
    """No CHAT_PASSWORD and no terminal: one line naming the env var and the flag, exit 3, no traceback;
    the same run with --password-file sends."""
    user = new_username("script")
    without_password = {name: value for name, value in os.environ.items() if name != "CHAT_PASSWORD"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            chat_command(stack, user, *args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            env=without_password,
            start_new_session=True,  # no controlling terminal, as under cron or CI
            check=False,
        )

    result = run("send", "hi")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"no password for {user}" in result.stderr
    assert "CHAT_PASSWORD" in result.stderr and "--password-file" in result.stderr
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    assert run("send", "--password-file", str(password_file), "hi").returncode == 0


def test_who_and_help_answer_in_pipe_mode(stack, peer, new_username) -> None:
    """Lines from a pipe: /help prints the usage and /who the users online, in order with the sends."""
    other = new_username("bob")
    peer(other)
    me = new_username("alice")
    result = run_chat(stack, me, stdin="/help\nhello\n/who\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("* plain text is public") and "/history" in lines[0], result.stdout
    online = next(line for line in lines if line.startswith("* online: "))
    assert {me, other} <= set(online.removeprefix("* online: ").split(", ")), online


def test_history_prints_recent_messages(stack, new_username) -> None:
    """`chat history` syncs and prints what the user can see, private messages marked."""
    alice, bob = new_username("alice"), new_username("bob")
    assert run_chat(stack, bob, "send", "bob was here").returncode == 0
    assert run_chat(stack, alice, "send", "--to", bob, "a secret for bob").returncode == 0
    result = run_chat(stack, bob, "history", "--limit", "100")
    assert result.returncode == 0, result.stderr
    assert f"{bob}: bob was here" in result.stdout
    assert f"[from {alice}] a secret for bob" in result.stdout


class Terminal:
    """The ``chat`` command on a pseudo-terminal, as a person would run it."""

    def __init__(self, command: list[str]) -> None:
        main, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {**os.environ, "CHAT_PASSWORD": PASSWORD, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.process = subprocess.Popen(
            command, stdin=child, stdout=child, stderr=child, cwd=REPO_ROOT, env=env, start_new_session=True
        )
        os.close(child)
        self.fd = main
        self.output = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk.decode(errors="replace")

    def text(self) -> str:
        return ANSI_ESCAPE.sub("", self.output)

    def type(self, line: str) -> None:
        self.write(line + "\r")

    def write(self, keys: str) -> None:
        """Keys typed without Enter."""
        os.write(self.fd, keys.encode())

    def wait_for(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{needle!r} not on the terminal; it shows:\n{self.text()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self.fd)


def test_interactive_session_sends_and_receives_on_a_terminal(stack, peer, new_username) -> None:
    """On a terminal: public and /msg lines go out, others' messages and presence come in, /quit ends."""
    me, other = new_username("tty"), new_username("bob")
    listener = peer(other)
    terminal = Terminal(chat_command(stack, me))
    try:
        terminal.wait_for(f"connected as {me}")
        terminal.type("hello from a terminal")
        assert listener.wait_for_message("hello from a terminal")["from"] == me
        listener.send({"action": "sendmessage", "text": "hi terminal"})
        terminal.wait_for(f"{other}: hi terminal")
        terminal.type(f"/msg {other} psst")
        assert listener.wait_for_message("psst")["to"] == other
        terminal.wait_for(f"[to {other}] psst")
        terminal.type("/who")
        terminal.wait_for("* online: ")
        terminal.type("/quit")
        assert terminal.process.wait(20) == 0
    finally:
        terminal.close()


def test_session_resumes_with_sync_after_a_dropped_connection(chat_config, new_username) -> None:
    """A dropped socket reconnects with backoff and gets what it missed from sync, once each."""
    asyncio.run(_resume_scenario(chat_config, new_username("carol"), new_username("dave")))


async def _resume_scenario(config: ChatConfig, me: str, other: str) -> None:
    async with _dropped_off(config, me, other, Backoff(base=6, cap=6)) as (events, theirs):
        await theirs.send("missed, privately", to=me)
        await theirs.send("missed, publicly")
        await _until(lambda: _texts(events).count("missed, publicly") == 1, timeout=30)
        await asyncio.sleep(0.5)  # room for a duplicate to show up, if there were one
        assert _texts(events).count("missed, privately") == 1
        assert _texts(events).count("missed, publicly") == 1


@contextlib.asynccontextmanager
async def _dropped_off(
    config: ChatConfig, me: str, other: str, backoff: Backoff
) -> AsyncIterator[tuple[list[dict[str, Any]], ChatSession]]:
    """My session and another's run; once both are online, my network drops (no closing
    handshake). Yields my session's events and the other session; stops both afterwards."""
    events: list[dict[str, Any]] = []
    mine = _session(config, me, events.append, backoff=backoff)
    theirs = _session(config, other, lambda _: None)
    runners = [asyncio.create_task(mine.run()), asyncio.create_task(theirs.run())]
    try:
        await _until(lambda: any(e.get("type") == "synced" for e in events))
        await _until(lambda: theirs.connection_state == "online")
        assert mine._socket is not None
        mine._socket.transport.abort()
        await _until(lambda: mine.connection_state == "offline")
        yield events, theirs
    finally:
        await asyncio.gather(mine.stop(), theirs.stop())
        await asyncio.gather(*runners)


def test_a_refused_sync_is_retried_until_the_missed_messages_come(monkeypatch, new_username) -> None:
    """A resume sync refused with rate_limited (a stack with a small sync budget) is asked again with
    back-off on the same connection, and the private message missed meanwhile arrives once."""
    from local_stack.testing import running_stack

    # 12 units a minute, 3 at once: the first sync (1 unit) leaves too little for a resume (3) for 5 s.
    monkeypatch.setenv("RATE_LIMIT_SYNC_PER_MINUTE", "12")
    with running_stack() as small_budget:
        config = load_from_url(small_budget.http_url)
        asyncio.run(_refused_sync_scenario(config, new_username("erin"), new_username("frank")))


async def _refused_sync_scenario(config: ChatConfig, me: str, other: str) -> None:
    async with _dropped_off(config, me, other, Backoff(base=2, cap=2)) as (events, theirs):
        await theirs.send("missed while refused", to=me)
        await _until(lambda: "missed while refused" in _texts(events), timeout=40)
        retries = [e for e in events if e.get("type") == "sync-retry"]
        assert retries and all(e["code"] == "rate_limited" for e in retries), events
        assert [e["retryIn"] for e in retries] == sorted(e["retryIn"] for e in retries)
        states = [e["state"] for e in events if e.get("type") == "connection"]
        assert states.count("online") == 2, states  # retried on the same connection, not by reconnecting
        await asyncio.sleep(0.5)
        assert _texts(events).count("missed while refused") == 1


def test_session_pings_to_outlive_the_idle_timeout(new_username) -> None:
    """A session that only listens sends `ping` often enough that the idle timeout never closes it."""
    from local_stack.testing import running_stack

    with running_stack(idle_timeout=2) as short_idle:
        config = load_from_url(short_idle.http_url)
        asyncio.run(_idle_scenario(config, new_username("idle")))


async def _idle_scenario(config: ChatConfig, me: str) -> None:
    events: list[dict[str, Any]] = []
    session = _session(config, me, events.append, ping_interval=0.5)
    runner = asyncio.create_task(session.run())
    try:
        await _until(lambda: session.connection_state == "online")
        await asyncio.sleep(5)
        assert [e["state"] for e in events if e.get("type") == "connection"] == ["connecting", "online"]
        assert any(e.get("type") == "pong" for e in events)
    finally:
        await session.stop()
        await runner


def _session(
    config: ChatConfig, user: str, on_event: Callable[[dict[str, Any]], None], **options: Any
) -> ChatSession:
    return ChatSession(config, CognitoAuth(config, user, PASSWORD), ChatState(user), on_event, **options)


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [event["text"] for event in events if event.get("type") == "message"]


async def _until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_peer_helper_is_a_few_lines_of_protocol(peer: Callable[[str], Peer], new_username) -> None:
    """The simplest possible client: connect with a token, send the bare text `ping`, get `pong`."""
    client = peer(new_username("plain"))
    client.socket.send("ping")
    assert client.wait_for(lambda frame: frame.get("type") == "pong")


def test_a_batched_resume_replays_many_missed_messages_once_in_order(chat_config, new_username) -> None:
    """With `batch: true` a resume comes as `messages` frames; every missed message shows once, in order."""
    asyncio.run(_batched_resume_scenario(chat_config, new_username("gina"), new_username("hal")))


async def _batched_resume_scenario(config: ChatConfig, me: str, other: str) -> None:
    events: list[dict[str, Any]] = []
    state = ChatState(me, batch=True)
    kinds: list[str] = []
    receive = state.receive

    def recording(frame: dict[str, Any]) -> Any:
        kinds.append(str(frame.get("type")))
        return receive(frame)

    state.receive = recording  # type: ignore[method-assign]  # notes the frame types; changes nothing
    auth = CognitoAuth(config, me, PASSWORD)
    theirs = _session(config, other, lambda _: None)
    their_runner = asyncio.create_task(theirs.run())
    try:
        first = ChatSession(config, auth, state, events.append)  # the first run, then closed
        runner = asyncio.create_task(first.run())
        await _until(lambda: any(e.get("type") == "synced" for e in events))
        await first.stop()
        await runner
        sent = [f"missed {n}" for n in range(20)]  # within the per-user send budget
        for text in sent:
            await theirs.send(text, to=me)
        later = ChatSession(config, auth, state, events.append)  # the same state resumes from its cursor
        runner = asyncio.create_task(later.run())
        await _until(lambda: "missed 19" in _texts(events), timeout=40)
        await asyncio.sleep(0.5)
        await later.stop()
        await runner
        assert [text for text in _texts(events) if text.startswith("missed ")] == sent
        assert "messages" in kinds and kinds.count("messages") < len(sent), kinds
    finally:
        await theirs.stop()
        await their_runner
