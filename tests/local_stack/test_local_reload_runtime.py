"""LambdaRuntime.reload in-process, on a small asset of its own: each invocation runs wholly on one
version of the code, a failed import changes nothing, and the watcher's lines say what happened."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.console import Console
from local_stack.lambdas import LambdaRuntime
from local_stack.reload import CodeWatcher

HANDLER = """
import threading
from {package} import words

started = threading.Event()
release = threading.Event()


def handler(event, context):
    first = words.WORD
    if event.get("wait"):
        started.set()
        release.wait(10)
    return [first, words.WORD, VERSION]


VERSION = {version}
"""


class Asset:
    """A throwaway Lambda asset: one package with a handler module and a module it imports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = f"probe_{uuid.uuid4().hex[:8]}"
        (root / self.package).mkdir()
        (root / self.package / "__init__.py").write_text("")
        self.write(version=1, word="one")

    def write(self, *, version: int, word: str) -> None:
        (self.root / self.package / "handler.py").write_text(
            HANDLER.format(package=self.package, version=version)
        )
        self.words.write_text(f"WORD = {word!r}\n")

    @property
    def words(self) -> Path:
        return self.root / self.package / "words.py"

    @property
    def handler(self) -> str:
        return f"{self.package}.handler.handler"


@pytest.fixture
def asset(tmp_path: Path) -> Iterator[Asset]:
    made = Asset(tmp_path)
    yield made
    sys.path.remove(str(tmp_path.resolve()))
    for name in [name for name in sys.modules if name.startswith(made.package)]:
        del sys.modules[name]


def test_an_invocation_runs_wholly_on_the_code_it_started_with(asset: Asset) -> None:
    """A call in flight across a reload sees only the old modules; the next call only the new ones."""
    runtime = LambdaRuntime(
        region="us-east-1", account_id="123456789012", stack_name="T", code_root=asset.root
    )
    function = runtime.function("Probe", asset.handler)

    async def scenario() -> None:
        assert (await runtime.invoke(function, {})).answer == ["one", "one", 1]
        old_module = sys.modules[f"{asset.package}.handler"]
        in_flight = asyncio.create_task(runtime.invoke(function, {"wait": True}))
        await asyncio.to_thread(old_module.started.wait, 10)

        asset.write(version=2, word="two")
        assert await asyncio.to_thread(runtime.reload) == 1
        assert (await runtime.invoke(function, {})).answer == ["two", "two", 2]

        old_module.release.set()
        assert (await in_flight).answer == ["one", "one", 1]

    try:
        asyncio.run(scenario())
    finally:
        runtime.close()


def test_a_broken_version_keeps_the_previous_one_and_the_watcher_says_where(asset: Asset) -> None:
    """A syntax error in the new code: reload fails, calls run the old code, one line names the file."""
    runtime = LambdaRuntime(
        region="us-east-1", account_id="123456789012", stack_name="T", code_root=asset.root
    )
    function = runtime.function("Probe", asset.handler)
    lines: list[str] = []
    console = Console(_Lines(lines))

    async def scenario() -> None:
        watcher = CodeWatcher(asset.root, runtime, console)
        assert (await runtime.invoke(function, {})).answer == ["one", "one", 1]
        asset.words.write_text("WORD = 'two\n")
        assert await watcher.reload([asset.words]) is False
        assert (await runtime.invoke(function, {})).answer == ["one", "one", 1]
        asset.words.write_text("WORD = 'three'\n")
        assert await watcher.reload([asset.words]) is True
        assert (await runtime.invoke(function, {})).answer == ["three", "three", 1]

    try:
        asyncio.run(scenario())
    finally:
        runtime.close()
    failed, reloaded = lines
    assert (
        f"reload failed, the previous code keeps running: {asset.package}/words.py, line 1: SyntaxError"
        in failed
    )
    assert f"reloaded {asset.package}/words.py: the next invocations run the new code (1 handler," in reloaded


class _Lines:
    """A text stream that keeps each line written (thread-safe enough for Console's lock)."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass
