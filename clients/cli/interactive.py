"""The interactive client: a line editor whose input line incoming messages never garble.

Incoming lines are printed through prompt_toolkit's ``patch_stdout``, which redraws the prompt and
what is typed below them; the bottom toolbar shows the connection state and who is online.

Protocol 1.1: on the first connection the unread counts of private conversations print (from
``inbox``); what is shown is reported read (``read``, throttled); ``/history [USER]`` pages back;
typing ``/msg USER …`` tells USER (``typing``), and others' typing prints as "bob is typing…".

When the account is gone (the server was reset), it says so and asks whether to sign up again
with the same name and password; the next line typed is the answer. Lines typed meanwhile wait
in the queue of unsent messages, like any typed while offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout

from clients.cli.auth import AccountGone
from clients.cli.protocol import (
    USAGE,
    Frame,
    Help,
    History,
    Invalid,
    Pager,
    Quit,
    ReadMarks,
    Say,
    Throttle,
    Who,
    parse_input,
    typing_frame,
    typing_recipient,
)
from clients.cli.render import format_event
from clients.cli.session import ChatSession, SendFailed

YES = ("", "y", "yes")
# Messages shown are reported read this long after the first of them, together: one ``read`` per
# conversation for a whole screenful, not one per message.
READ_DELAY_SECONDS = 2.0
# The server forwards at most one ``typing`` every 3 seconds; sending more often is wasted.
TYPING_SEND_SECONDS = 3.0
# The protocol asks clients to show "… is typing" for about 5 seconds.
TYPING_SHOWN_SECONDS = 5.0

Tasks = set[asyncio.Task[Any]]


class ReadReporter:
    """Sends ``read`` for the messages the screen showed: after a quiet moment, one frame per
    conversation for everything shown meanwhile, never one per message."""

    def __init__(self, marks: ReadMarks, session: ChatSession, delay: float = READ_DELAY_SECONDS) -> None:
        self.marks = marks
        self.session = session
        self.delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: Tasks = set()

    def shown(self, message: Frame) -> None:
        self.marks.note_shown(message)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.session.connection_state != "online":
            # Offline: try again later; what was shown stays due until it is reported.
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._flush)
            return
        for frame in self.marks.due():
            _spawn(self.session.send_frame(frame), self._tasks)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Screen:
    """What the terminal shows: printed events, plus the state the toolbar reads."""

    def __init__(self, me: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.me = me
        self.connection = "connecting"
        self.online: set[str] = set()
        self.prompt: PromptSession[str] | None = None
        # A yes/no question waiting for the next line typed.
        self.question: asyncio.Future[bool] | None = None
        self.marks = ReadMarks(me)
        self.pager = Pager(me)
        self.reads: ReadReporter | None = None
        self.clock = clock
        # One "is typing" line per sender for as long as the protocol says to show it.
        self.typing_lines = Throttle(TYPING_SHOWN_SECONDS)

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
        line = self._typing_line(event) if event.get("type") == "typing" else format_event(event, self.me)
        if line is not None:
            print(line, flush=True)
        if event.get("type") == "message":
            self.pager.note_shown(event)
            if self.reads is not None:
                self.reads.shown(event)  # it is on screen now: read, once the reporter says so
        elif event.get("type") == "history":
            self.pager.note_page(event)
        if self.prompt is not None and self.prompt.app.is_running:
            self.prompt.app.invalidate()  # redraw the toolbar

    def _typing_line(self, event: Frame) -> str | None:
        sender = event.get("from")
        if not isinstance(sender, str) or not self.typing_lines.allows(sender, self.clock()):
            return None
        return f"* {sender} is typing…"

    def _track(self, event: Frame) -> None:
        kind = event.get("type")
        if kind == "connection":
            self.connection = str(event.get("state"))
        elif kind == "who":
            self.online = set(event.get("users") or [])
        elif kind == "presence":
            user = str(event.get("user"))
            (self.online.add if event.get("online") else self.online.discard)(user)
        elif kind == "inbox":
            for entry in event.get("conversations") or []:
                if isinstance(entry, dict):
                    self.marks.note_recorded(entry.get("with"), entry.get("readUpTo"))
        elif kind == "read" and event.get("user") == self.me:
            self.marks.note_recorded(event.get("with"), event.get("upTo"))  # read on another device

    def toolbar(self) -> str:
        people = ", ".join(sorted(self.online)) or "nobody"
        return f" {self.me} · {self.connection} · online: {people} · /help"


async def run_interactive(session: ChatSession, screen: Screen, **prompt_options: Any) -> int:
    """Read commands until /quit or Ctrl-D; ``prompt_options`` (input, output) let tests drive it."""
    screen.prompt = PromptSession(f"{screen.me}> ", bottom_toolbar=screen.toolbar, **prompt_options)
    session.on_account_gone = screen.ask_to_sign_up
    screen.reads = ReadReporter(screen.marks, session)
    tasks: Tasks = set()
    screen.prompt.default_buffer.on_text_changed += _typing_notifier(session, screen, tasks)
    runner = asyncio.create_task(session.run())
    # A session that gives up (a revoked account, say) ends the prompt too.
    runner.add_done_callback(lambda _: _end_prompt(screen.prompt))
    with patch_stdout(raw=True):
        await _read_commands(session, screen, runner, tasks)
        if screen.question is not None:
            screen.question.cancel()
        screen.reads.cancel()
        await session.stop()
    return await _finish(runner)


def _typing_notifier(session: ChatSession, screen: Screen, tasks: Tasks) -> Callable[[Buffer], None]:
    """While a ``/msg USER …`` line is being typed, tell USER (at most every few seconds)."""
    throttle = Throttle(TYPING_SEND_SECONDS)

    def on_change(buffer: Buffer) -> None:
        recipient = typing_recipient(buffer.text)
        if recipient is None or recipient == screen.me or not throttle.allows(recipient, screen.clock()):
            return
        _spawn(session.send_frame(typing_frame(recipient)), tasks)

    return on_change


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
        if not _perform(parse_input(line), session, screen, tasks):
            return


def _perform(command: object, session: ChatSession, screen: Screen, tasks: Tasks) -> bool:
    """Carry out one command; False to quit."""
    if isinstance(command, Quit):
        return False
    if isinstance(command, Say):
        # Not awaited: the ack (or error) shows up as an event while the user goes on typing.
        _spawn(session.send(command.text, command.to), tasks)
    elif isinstance(command, Who):
        _spawn(session.who(), tasks)
    elif isinstance(command, History):
        # The answer prints as a ``history`` event; an error (unknown user…) as an error frame.
        _spawn(session.send_frame(screen.pager.request(command.partner)), tasks)
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
