"""Hot reload over real sockets: an edit under functions/ reaches an open socket, a broken one does not."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack import REPO_ROOT
from local_stack.testing import RunningStack, running_stack
from tests.support.chat_client import ChatClient

PROTOCOL = Path("chat") / "protocol.py"
OLD_TEXT = "unknown action {action[:64]!r}; known actions"
NEW_TEXT = "no such action {action[:64]!r}; known actions"


@pytest.fixture(scope="module")
def code_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of functions/ for the stack to run: the tests edit it, never the real source."""
    copy = tmp_path_factory.mktemp("asset") / "functions"
    shutil.copytree(REPO_ROOT / "functions", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture(scope="module")
def reloading_stack(code_copy: Path) -> Iterator[RunningStack]:
    with running_stack(functions_dir=code_copy) as running:
        yield running


def unknown_action_message(client: ChatClient, action: str) -> str:
    """The message of the error frame answering ``{"action": action}`` (each test uses a new action)."""
    client.send({"action": action})
    frame = client.wait_for(
        lambda f: f.get("code") == "unknown_action" and repr(action) in str(f.get("message")), timeout=15
    )
    return str(frame["message"])


def wait_for_log(stack: RunningStack, text: str, count: int = 1, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = stack.log()
        if log.count(text) >= count:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not printed {count} time(s) within {timeout} s:\n{stack.log()}")


def test_an_edit_reaches_an_open_socket_and_a_syntax_error_keeps_the_old_code(
    reloading_stack: RunningStack, code_copy: Path
) -> None:
    """The same socket sees an edited message after the reload line; a syntax error changes nothing."""
    stack = reloading_stack
    client = ChatClient.connect(stack, stack.create_user("alice"))
    source = code_copy / PROTOCOL
    original = source.read_text()
    try:
        assert unknown_action_message(client, "fly").startswith("unknown action 'fly'")
        assert OLD_TEXT in original
        source.write_text(original.replace(OLD_TEXT, NEW_TEXT))
        log = wait_for_log(stack, "reloaded chat/protocol.py: the next invocations run the new code")
        assert "Traceback" not in log
        assert unknown_action_message(client, "swim").startswith("no such action 'swim'")

        source.write_text(original.replace(OLD_TEXT, NEW_TEXT) + "\ndef broken(:\n")
        log = wait_for_log(stack, "reload failed, the previous code keeps running: chat/protocol.py, line")
        assert "SyntaxError" in log.split("reload failed", 1)[1]
        assert unknown_action_message(client, "dig").startswith("no such action 'dig'")

        # Other routes still work on the same socket, and nothing closed it.
        client.send({"action": "ping"})
        client.wait_type("pong")
        assert "$disconnect" not in stack.log()
        assert client.socket.close_code is None
    finally:
        source.write_text(original)
        client.close()


def test_an_import_error_keeps_the_old_code_and_the_fix_is_taken(
    reloading_stack: RunningStack, code_copy: Path
) -> None:
    """A module that fails at import keeps the previous code; fixing it reloads."""
    stack = reloading_stack
    client = ChatClient.connect(stack, stack.create_user("bob"))
    errors_module = code_copy / "chat" / "errors.py"
    original = errors_module.read_text()
    try:
        failures_before = stack.log().count("reload failed")
        errors_module.write_text(original + "\nfrom chat.nowhere import nothing  # noqa\n")
        log = wait_for_log(stack, "reload failed", count=failures_before + 1)
        assert "ModuleNotFoundError: No module named 'chat.nowhere'" in log
        client.send({"action": "ping"})
        client.wait_type("pong")

        reloads_before = stack.log().count("reloaded chat/errors.py")
        errors_module.write_text(original)
        wait_for_log(stack, "reloaded chat/errors.py", count=reloads_before + 1)
        client.send({"action": "who"})
        assert "bob" in " ".join(client.wait_type("who")["users"])
    finally:
        errors_module.write_text(original)
        client.close()
