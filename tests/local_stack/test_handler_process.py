"""LambdaRuntime with the handlers in a child process (handler_process.py): answers, errors, the
context, reload and the end of the child, on a small asset of its own."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.handler_process import HandlerError
from local_stack.lambdas import LambdaRuntime

HANDLER = """
import os
import threading


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def handler(event, context):
    if event.get("raise") == "value":
        raise ValueError("no such thing")
    if event.get("raise") == "unpicklable":
        raise Unpicklable("holds a lock")
    return {{
        "pid": os.getpid(),
        "version": {version},
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "requestId": context.aws_request_id,
    }}
"""


@pytest.fixture
def asset(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    package = f"probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "handler.py").write_text(HANDLER.format(version=1))
    yield tmp_path, package
    sys.path.remove(str(tmp_path.resolve()))
    for name in [name for name in sys.modules if name.startswith(package)]:
        del sys.modules[name]


@pytest.fixture
def runtime(asset: tuple[Path, str]) -> Iterator[LambdaRuntime]:
    made = LambdaRuntime(
        region="us-east-1",
        account_id="123456789012",
        stack_name="T",
        code_root=asset[0],
        handler_process=True,
    )
    yield made
    made.close()


def test_a_call_runs_in_the_child_with_lambdas_context(
    runtime: LambdaRuntime, asset: tuple[Path, str]
) -> None:
    """The handler runs in another process and gets the function's name, ARN and request id."""
    function = runtime.function("Probe", f"{asset[1]}.handler.handler")
    assert runtime.preload([function]) == {}
    call = asyncio.run(runtime.invoke(function, {}))
    assert call.error is None
    assert call.answer["pid"] == runtime.handler_pid != os.getpid()
    assert call.answer["name"] == "T-Probe"
    assert call.answer["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:T-Probe"
    assert call.answer["requestId"] == call.request_id


def test_a_handlers_exception_comes_back_by_its_name(runtime: LambdaRuntime, asset: tuple[Path, str]) -> None:
    """An exception that pickles comes back as itself; one that does not, under its own type name."""
    function = runtime.function("Probe", f"{asset[1]}.handler.handler")
    runtime.preload([function])
    plain = asyncio.run(runtime.invoke(function, {"raise": "value"}))
    assert type(plain.error) is ValueError
    assert str(plain.error) == "no such thing"
    odd = asyncio.run(runtime.invoke(function, {"raise": "unpicklable"}))
    assert isinstance(odd.error, HandlerError)
    assert f"{type(odd.error).__name__}: {odd.error}" == "Unpicklable: holds a lock"


def test_reload_reaches_the_child(runtime: LambdaRuntime, asset: tuple[Path, str]) -> None:
    """After a reload, the next call in the child runs the new code."""
    root, package = asset
    function = runtime.function("Probe", f"{package}.handler.handler")
    runtime.preload([function])
    assert asyncio.run(runtime.invoke(function, {})).answer["version"] == 1
    (root / package / "handler.py").write_text(HANDLER.format(version=2))
    for cached in (root / package / "__pycache__").glob("handler.*"):
        cached.unlink()
    assert runtime.reload() == 1
    assert asyncio.run(runtime.invoke(function, {})).answer["version"] == 2


def test_the_child_ends_with_the_runtime(runtime: LambdaRuntime, asset: tuple[Path, str]) -> None:
    """close() ends the handlers' process."""
    function = runtime.function("Probe", f"{asset[1]}.handler.handler")
    runtime.preload([function])
    pid = runtime.handler_pid
    assert pid is not None
    runtime.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
