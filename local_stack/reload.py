"""Hot reload: a change under ``functions/`` is deployed to the running stack, sockets untouched.

On AWS a ``cdk deploy`` of new Lambda code keeps every WebSocket connection open: the next
invocation simply runs the new version. Here ``CodeWatcher`` does the same. It watches the Lambda
asset's root with watchfiles (inotify on Linux, FSEvents on macOS; changes arriving together are
taken as one), drops the bytecode cached for the changed files, and asks the runtime to import the
code afresh (``LambdaRuntime.reload``). It prints one line either way::

    12:00:05  reloaded chat/protocol.py: the next invocations run the new code (9 handlers, 180 ms)
    12:00:09  reload failed, the previous code keeps running: chat/protocol.py, line 81: SyntaxError: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
import traceback
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from watchfiles import PythonFilter, awatch

from local_stack.console import Console
from local_stack.lambdas import LambdaRuntime

# Changes closer together than this are one reload (an editor writes a file in several steps).
DEBOUNCE_MS = 200


class CodeWatcher:
    """Reloads the runtime's handlers whenever a Python file under ``root`` changes."""

    def __init__(self, root: Path, runtime: LambdaRuntime, console: Console) -> None:
        self.root = root.resolve()
        self._runtime = runtime
        self._console = console
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def shown_root(self) -> str:
        """The watched folder as a person would type it: relative to the working directory if inside."""
        cwd = Path.cwd()
        return f"{self.root.relative_to(cwd)}/" if self.root.is_relative_to(cwd) else str(self.root)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        async for changes in awatch(
            self.root, watch_filter=PythonFilter(), debounce=DEBOUNCE_MS, stop_event=self._stop
        ):
            await self.reload(Path(path) for _, path in changes)

    async def reload(self, changed: Iterable[Path]) -> bool:
        """Deploy the code as it is now; True when the new version is in use."""
        files = sorted({path.resolve() for path in changed})
        for file in files:
            _forget_bytecode(file)
        names = ", ".join(self._relative(file) for file in files) or "the code"
        started = time.monotonic()
        try:
            count = await asyncio.to_thread(self._runtime.reload)
        except Exception as error:  # noqa: BLE001 - any import-time failure keeps the old code
            self._say(f"reload failed, the previous code keeps running: {self._describe(error)}")
            return False
        elapsed_ms = (time.monotonic() - started) * 1000
        handlers = f"{count} handler{'' if count == 1 else 's'}"
        self._say(
            f"reloaded {names}: the next invocations run the new code ({handlers}, {elapsed_ms:.0f} ms)"
        )
        return True

    def _describe(self, error: Exception) -> str:
        """Where the new code broke and how, in one line: file, line, exception."""
        if isinstance(error, SyntaxError) and error.filename:
            return f"{self._relative(Path(error.filename))}, line {error.lineno}: SyntaxError: {error.msg}"
        frames = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if Path(frame.filename).resolve().is_relative_to(self.root)
        ]
        where = f"{self._relative(Path(frames[-1].filename))}, line {frames[-1].lineno}: " if frames else ""
        return f"{where}{type(error).__name__}: {error}"

    def _relative(self, file: Path) -> str:
        resolved = file.resolve()
        return str(resolved.relative_to(self.root)) if resolved.is_relative_to(self.root) else str(file)

    def _say(self, text: str) -> None:
        self._console.note(f"{datetime.now():%H:%M:%S}  {text}")


def _forget_bytecode(source: Path) -> None:
    """Remove the cached bytecode of ``source``: an edit that keeps the file's size within the same
    second as the last compile would otherwise look unchanged to the import system."""
    if source.suffix != ".py":
        return
    with contextlib.suppress(OSError, ValueError):
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)
