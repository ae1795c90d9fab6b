"""The interactive client: a line editor whose input line incoming messages never garble.

Incoming lines are printed through prompt_toolkit's ``patch_stdout``, which redraws the prompt and
what is typed below them; the bottom toolbar shows the connection state and who is online.

When the account is gone (the server was reset), it says so and asks whether to sign up again
with the same name and password; the next line typed is the answer. Lines typed meanwhile wait
in the queue of unsent messages, like any typed while offline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from clients.cli.auth import AccountGone
from clients.cli.protocol import USAGE, Frame, Help, Invalid, Quit, Say, Who, parse_input
from clients.cli.render import format_event
from clients.cli.session import ChatSession, SendFailed

YES = ("", "y", "yes")

Tasks = set[asyncio.Task[Any]]


class Screen:
    """What the terminal shows: printed events, plus the state the toolbar reads."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.connection = "connecting"
        self.online: set[str] = set()
        self.prompt: PromptSession[str] | None = None
        # A yes/no question waiting for the next line typed.
        self.question: asyncio.Future[bool] | None = None

    async def ask_to_sign_up(self, gone: AccountGone) -> bool:
        """``ChatSession.on_account_gone``: say what happened, and take the next line as the answer."""
        self.question = asyncio.get_running_loop().create_future()
        print(f"! {gone.message[0].upper()}{gone.message[1:]}.", flush=True)
        print(f"! Sign up again as {self.me} with the same password? [Y/n]", flush=True)
        try:
            return await self.question
        except asyncio.CancelledError:
            return False
        finally:
            self.question = None

    def answer(self, line: str) -> bool:
        """Take ``line`` as the answer to the waiting question, if there is one."""
        if self.question is None or self.question.done():
            return False
        yes = line.strip().lower() in YES
        self.question.set_result(yes)
        if not yes:
            print("* Not signing up again.", flush=True)
        return True

    def on_event(self, event: Frame) -> None:
        self._track(event)
        line = format_event(event, self.me)
        if line is not None:
            print(line, flush=True)
        if self.prompt is not None and self.prompt.app.is_running:
            self.prompt.app.invalidate()  # redraw the toolbar

    def _track(self, event: Frame) -> None:
        kind = event.get("type")
        if kind == "connection":
            self.connection = str(event.get("state"))
        elif kind == "who":
            self.online = set(event.get("users") or [])
        elif kind == "presence":
            user = str(event.get("user"))
            (self.online.add if event.get("online") else self.online.discard)(user)

    def toolbar(self) -> str:
        people = ", ".join(sorted(self.online)) or "nobody"
        return f" {self.me} · {self.connection} · online: {people} · /help"


async def run_interactive(session: ChatSession, screen: Screen, **prompt_options: Any) -> int:
    """Read commands until /quit or Ctrl-D; ``prompt_options`` (input, output) let tests drive it."""
    screen.prompt = PromptSession(f"{screen.me}> ", bottom_toolbar=screen.toolbar, **prompt_options)
    session.on_account_gone = screen.ask_to_sign_up
    runner = asyncio.create_task(session.run())
    # A session that gives up (a revoked account, say) ends the prompt too.
    runner.add_done_callback(lambda _: _end_prompt(screen.prompt))
    tasks: Tasks = set()
    with patch_stdout(raw=True):
        await _read_commands(session, screen, runner, tasks)
        if screen.question is not None:
            screen.question.cancel()
        await session.stop()
    return await _finish(runner)


async def _read_commands(
    session: ChatSession, screen: Screen, runner: asyncio.Task[None], tasks: Tasks
) -> None:
    assert screen.prompt is not None
    while not runner.done():
        try:
            line = await screen.prompt.prompt_async()
        except (EOFError, KeyboardInterrupt):
            return
        if line is None:
            return
        if screen.answer(line):
            continue
        if not _perform(parse_input(line), session, tasks):
            return


def _perform(command: object, session: ChatSession, tasks: Tasks) -> bool:
    """Carry out one command; False to quit."""
    if isinstance(command, Quit):
        return False
    if isinstance(command, Say):
        # Not awaited: the ack (or error) shows up as an event while the user goes on typing.
        _spawn(session.send(command.text, command.to), tasks)
    elif isinstance(command, Who):
        _spawn(session.who(), tasks)
    elif isinstance(command, Help):
        print(f"* {USAGE}")
    elif isinstance(command, Invalid):
        print(f"! {command.reason}")
    return True


def _spawn(work: Coroutine[Any, Any, Any], tasks: Tasks) -> None:
    task = asyncio.create_task(work)
    tasks.add(task)  # a task nobody references may be collected before it runs
    task.add_done_callback(lambda done: _settled(done, tasks))


def _settled(task: asyncio.Task[Any], tasks: Tasks) -> None:
    tasks.discard(task)
    if not task.cancelled():
        # A SendFailed is already on screen as the error frame's event.
        with contextlib.suppress(SendFailed):
            task.result()


def _end_prompt(prompt: PromptSession[str] | None) -> None:
    if prompt is not None and prompt.app.is_running:
        prompt.app.exit()


async def _finish(runner: asyncio.Task[None]) -> int:
    await runner  # re-raises why the session gave up, for main to report
    return 0
