"""The non-interactive modes, for scripts: ``chat send``, lines from stdin, and ``chat history``.

Lines from stdin are messages, or ``/msg``, ``/who``, ``/history [USER]``, ``/help``, ``/quit``.

Exit codes: 0 done; 1 the server answered with an ``error`` frame (its code is printed);
3 no connection or no sign-in (see ``main``); 4 a timeout.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TextIO, TypeVar

from clients.cli.protocol import (
    USAGE,
    WHO_FRAME,
    Frame,
    Help,
    History,
    Invalid,
    Pager,
    Quit,
    Say,
    Who,
    parse_input,
)
from clients.cli.render import format_event, format_message
from clients.cli.session import ChatSession, SendFailed

EXIT_OK, EXIT_ERROR_FRAME, EXIT_TIMEOUT = 0, 1, 4
T = TypeVar("T")


def print_errors(event: Frame) -> None:
    """An ``on_event`` for scripts: quiet but for error frames, which go to stderr."""
    if event.get("type") == "error":
        print(f"chat: {event.get('code')}: {event.get('message')}", file=sys.stderr, flush=True)


async def while_connected(session: ChatSession, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` with the session connected; a session that gives up ends it with its error."""
    runner = asyncio.create_task(session.run())
    task = asyncio.create_task(work)
    try:
        await asyncio.wait({runner, task}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            runner.result()  # raises why the session gave up
        return task.result()
    finally:
        task.cancel()
        await session.stop()
        await asyncio.gather(runner, return_exceptions=True)


async def send_one(session: ChatSession, text: str, to: str | None, timeout: float) -> int:
    return await _send(session, Say(text, to), timeout)


async def send_lines(session: ChatSession, stream: TextIO, timeout: float, out: TextIO = sys.stdout) -> int:
    """Send each line of ``stream`` (``/msg USER TEXT`` is private), one ack after another, in order.

    ``/who``, ``/history [USER]`` and ``/help`` print their answer on ``out`` as they come, in order.
    """
    status = EXIT_OK
    # Nothing received is shown here, so /history starts from the latest page of a conversation.
    pager = Pager(session.state.username)
    while line := await asyncio.to_thread(stream.readline):
        command = parse_input(line)
        if isinstance(command, Quit):
            break
        if isinstance(command, Invalid):
            print(f"chat: {command.reason}", file=sys.stderr)
            status = EXIT_ERROR_FRAME
        elif isinstance(command, Say):
            status = await _send(session, command, timeout) or status
        elif isinstance(command, Help):
            print(f"* {USAGE}", file=out, flush=True)
        elif isinstance(command, Who):
            status = await _ask(session, WHO_FRAME, "who", timeout, out) or status
        elif isinstance(command, History):
            page = pager.request(command.partner)
            status = await _ask(session, page, "history", timeout, out, pager) or status
    return status


async def _ask(
    session: ChatSession, frame: Frame, answer: str, timeout: float, out: TextIO, pager: Pager | None = None
) -> int:
    """Send a request, print its answer as the terminal would show it."""
    try:
        event = await asyncio.wait_for(session.request(frame, answer), timeout)
    except SendFailed:
        return EXIT_ERROR_FRAME  # print_errors has shown the code
    except TimeoutError:
        print(f"chat: no answer to {frame['action']} within {timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    if pager is not None:
        pager.note_page(event)  # the next /history goes on from here
    line = format_event(event, session.state.username)
    if line is not None:
        print(line, file=out, flush=True)
    return EXIT_OK


async def _send(session: ChatSession, say: Say, timeout: float) -> int:
    try:
        await asyncio.wait_for(session.send(say.text, say.to), timeout)
    except SendFailed:
        return EXIT_ERROR_FRAME  # print_errors has shown the code
    except TimeoutError:
        print(f"chat: no ack within {timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_OK


class HistoryPrinter:
    """An ``on_event`` that prints replayed messages and notes when the replay is over."""

    def __init__(self, me: str, stream: TextIO = sys.stdout) -> None:
        self.me = me
        self.stream = stream
        self.done = asyncio.Event()

    def on_event(self, event: Frame) -> None:
        if event.get("type") == "message":
            print(format_message(event, self.me), file=self.stream, flush=True)
        elif event.get("type") == "synced":
            self.done.set()
        else:
            print_errors(event)


async def print_history(printer: HistoryPrinter, timeout: float) -> int:
    try:
        await asyncio.wait_for(printer.done.wait(), timeout)
    except TimeoutError:
        print(f"chat: no history within {timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_OK
