"""The interactive client: a line editor whose input line incoming messages never garble.

Incoming lines are printed through prompt_toolkit's ``patch_stdout``, which redraws the prompt and
what is typed below them; the bottom toolbar shows the connection state and who is online.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from clients.cli.protocol import USAGE, Frame, Help, Invalid, Quit, Say, Who, parse_input
from clients.cli.render import format_event
from clients.cli.session import ChatSession, SendFailed

Tasks = set[asyncio.Task[Any]]


class Screen:
    """What the terminal shows: printed events, plus the state the toolbar reads."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.connection = "connecting"
        self.online: set[str] = set()
        self.prompt: PromptSession[str] | None = None

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
    runner = asyncio.create_task(session.run())
    # A session that gives up (a revoked account, say) ends the prompt too.
    runner.add_done_callback(lambda _: _end_prompt(screen.prompt))
    tasks: Tasks = set()
    with patch_stdout(raw=True):
        await _read_commands(session, screen.prompt, runner, tasks)
        await session.stop()
    return await _finish(runner)


async def _read_commands(
    session: ChatSession,
    prompt: PromptSession[str],
    runner: asyncio.Task[None],
    tasks: Tasks,
) -> None:
    while not runner.done():
        try:
            line = await prompt.prompt_async()
        except (EOFError, KeyboardInterrupt):
            return
        if line is None or not _perform(parse_input(line), session, tasks):
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
