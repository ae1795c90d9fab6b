"""The local stack for tests: start it, sign users up, connect, stop it.

    from local_stack.testing import running_stack

    with running_stack() as stack:            # free ports; stopped (cleanly) on exit
        alice = stack.create_user("alice")    # signed up through the Cognito endpoint, confirmed
        url = stack.connect_url(alice.access_token)
        ...                                   # any WebSocket client, over real sockets

``running_stack(**options)`` takes the flags of ``python -m local_stack`` as keywords:
``idle_timeout`` and ``max_lifetime`` (seconds), ``management_latency`` (seconds) and
``management_throttle_rate`` (0 to 1) for fault tests, ``record_events`` (then
``stack.recorded_events()`` returns every event built), ``log_level`` (the handlers'), ``breaks``
(names of deliberate faults, ``local_stack/breaks.py``), ``presence_grace`` (seconds before a user
whose last connection closed is announced offline), ``functions_dir`` (run the handlers from a
copy of ``functions/``, to edit it while it runs), ``reload=False`` (no hot reload), ``data_dir``
(default: a new empty folder, removed afterwards, so tests never share state; pass one to start a
stack on the state of another) and ``fresh``, ``port`` and ``management_port`` (default: free ones).

``stack.stop()`` and ``stack.start()`` (or ``stack.restart()``) stop the stack as Ctrl-C does and
start it again on the same ports and the same data directory, for clients that must ride a
restart; ``config`` and the other fields then describe the new process. ``stack.kill()`` stops it
as a crash would (``kill -9`` of its process and of moto's); ``stack.resident_memory_kib()`` is what
the two hold in memory.

The stack runs in a child process (``python -m local_stack``; its output is in ``stack.log()``):
the handlers cache their settings and clients per process, as a warm Lambda does, and moto keeps
its state per process, where any test using ``moto.mock_aws`` would reset it. So several stacks
(say, one with a shortened idle timeout) run side by side, and nothing leaks into the test
process's environment.

Stable API: ``http_url``, ``websocket_url``, ``management_url``, ``cognito_url``, ``config``,
``region``, ``aws_endpoint``, ``table_names``, ``aws_client``, ``create_user``, ``sign_in``,
``connect_url``, ``cognito_client``, ``management_client``, ``recorded_events``, ``log``,
``stop``, ``start``, ``restart``, ``kill``, ``running``, ``pid``, ``moto_pid``, ``handler_pid``, ``data_dir``,
``resident_memory_kib``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import urlopen

import boto3

from local_stack import REPO_ROOT, aws

DEFAULT_PASSWORD = "password123"  # noqa: S105 - meets the pool's policy: 8+, lower-case and digits
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class User:
    """A confirmed user and the tokens of one sign-in."""

    username: str
    password: str
    access_token: str
    id_token: str
    refresh_token: str


@dataclass
class RunningStack:
    """A running local stack's addresses, and helpers to use it as a client would."""

    http_url: str
    websocket_url: str
    management_url: str
    cognito_url: str
    config: dict[str, str]
    # moto's URL (DynamoDB, Cognito's admin side) and the tables' names by logical id.
    aws_endpoint: str = ""
    table_names: dict[str, str] = field(default_factory=dict)
    region: str = aws.REGION
    log_path: Path | None = None
    # moto's own process, the handlers' process, and the folder the stack's state persists in.
    moto_pid: int = 0
    handler_pid: int = 0
    data_dir: Path | None = None
    _events_url: str = field(default="", repr=False)
    _process: _StackProcess | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int:
        """The process id of the stack running now (``python -m local_stack``)."""
        assert self._process is not None
        return self._process.pid

    def kill(self) -> None:
        """``kill -9`` the stack and moto's process, as a crash would: no ``$disconnect``, no last
        save; ``start()`` brings it back."""
        assert self._process is not None
        for pid in (self.moto_pid, self.handler_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._process.kill()

    def resident_memory_kib(self) -> int:
        """What the stack's process, the handlers' and moto's hold in memory (``VmRSS``), in KiB."""
        return sum(_resident_kib(pid) for pid in (self.pid, self.handler_pid, self.moto_pid))

    def stop(self) -> None:
        """Stop the stack as Ctrl-C does: sockets closed with 1001, ``$disconnect`` run."""
        assert self._process is not None
        self._process.stop()

    def start(self, *, fresh: bool = False) -> None:
        """Start the stopped stack again, on the same ports and data directory (emptied first with
        ``fresh``, as ``--fresh`` does); the fields follow the new process."""
        assert self._process is not None
        ready = self._process.start(["--fresh"] if fresh else [])
        self.config = ready["config"]
        self.moto_pid = ready["resources"]["motoPid"]
        self.handler_pid = ready["resources"]["handlerPid"] or 0
        self.aws_endpoint = ready["resources"]["awsEndpoint"]
        self.table_names = ready["resources"]["tableNames"]

    def restart(self) -> None:
        self.stop()
        self.start()

    def cognito_client(self) -> Any:
        """boto3's cognito-idp client on the stack's Cognito endpoint (the one clients use)."""
        return boto3.client(
            "cognito-idp", endpoint_url=self.cognito_url, region_name=self.region, **aws.DUMMY_CREDENTIALS
        )

    def aws_client(self, service: str) -> Any:
        """A boto3 client on moto itself (``dynamodb``, ``cognito-idp``), to look behind the API."""
        return boto3.client(
            service, endpoint_url=self.aws_endpoint, region_name=self.region, **aws.DUMMY_CREDENTIALS
        )

    def management_client(self) -> Any:
        """boto3's apigatewaymanagementapi client on the stack's management API."""
        return boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=self.management_url,
            region_name=self.region,
            **aws.DUMMY_CREDENTIALS,
        )

    def create_user(
        self, prefix: str = "user", *, password: str = DEFAULT_PASSWORD, exact: bool = False
    ) -> User:
        """Sign up a new user (named ``prefix-<random>``, or exactly ``prefix``) and sign it in."""
        username = prefix if exact else unique_username(prefix)
        answer = self.cognito_client().sign_up(
            ClientId=self.config["userPoolClientId"], Username=username, Password=password
        )
        if not answer["UserConfirmed"]:
            raise RuntimeError(f"sign-up of {username!r} was not auto-confirmed")
        return self.sign_in(username, password)

    def sign_in(self, username: str, password: str = DEFAULT_PASSWORD) -> User:
        """USER_PASSWORD_AUTH through the stack's Cognito endpoint."""
        result = self.cognito_client().initiate_auth(
            ClientId=self.config["userPoolClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        return User(
            username.lower(), password, result["AccessToken"], result["IdToken"], result["RefreshToken"]
        )

    def connect_url(self, token: str) -> str:
        """The WebSocket URL with ``?token=``, as every client builds it."""
        return f"{self.websocket_url}?token={quote(token, safe='')}"

    def recorded_events(self) -> list[dict[str, Any]]:
        """Every event built so far, oldest first, as ``{"kind", "event"}`` (``record_events=True``)."""
        if not self._events_url:
            raise RuntimeError("start the stack with record_events=True")
        with urlopen(self._events_url, timeout=10) as reply:  # noqa: S310 - our own http:// URL
            events: list[dict[str, Any]] = json.load(reply)
        return events

    def log(self) -> str:
        """What the stack printed so far (child process only)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def unique_username(prefix: str = "user") -> str:
    """A username no other test has: ``prefix-`` and eight hex digits (within the 32-character rule)."""
    return f"{prefix[:23]}-{uuid.uuid4().hex[:8]}".lower()


@contextlib.contextmanager
def running_stack(**options: Any) -> Iterator[RunningStack]:
    """The whole local stack on free ports of 127.0.0.1, until the ``with`` block ends."""
    with _in_child_process(options) as stack:
        yield stack


# -- child process


@contextlib.contextmanager
def _in_child_process(options: dict[str, Any]) -> Iterator[RunningStack]:
    with tempfile.TemporaryDirectory(prefix="local-stack-") as folder:
        data_dir = Path(options.get("data_dir") or Path(folder) / "data")
        ports = ["--port", str(options.get("port", 0)), "--data-dir", str(data_dir)]
        process = _StackProcess(Path(folder), [*ports, *_flags(options)])
        try:
            ready = process.start()
            stack = _running_stack(ready, process.log_path, options)
            stack.data_dir = data_dir
            stack._process = process
            yield stack
        finally:
            process.stop()


class _StackProcess:
    """``python -m local_stack`` as a child process; started again, it keeps its first ports."""

    def __init__(self, folder: Path, flags: list[str]) -> None:
        self.ready_file = folder / "ready.json"
        self.log_path = folder / "stack.log"
        self._flags = flags
        self._ports: list[str] = []  # after the first start: the ports it got, kept for restarts
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def start(self, extra_flags: list[str] | None = None) -> dict[str, Any]:
        assert not self.running, "the stack is running"
        self.ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "local_stack", *self._flags, *self._ports, *(extra_flags or [])]
        command += ["--ready-file", str(self.ready_file)]
        with self.log_path.open("ab") as log:
            self._child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        ready = _wait_until_ready(self._child, self.ready_file, self.log_path)
        web_port = urlsplit(ready["urls"]["web"]).port
        management_port = urlsplit(ready["urls"]["management"]).port
        self._ports = ["--port", str(web_port), "--management-port", str(management_port)]
        # A restart keeps the state: only the first start may empty the data directory.
        self._flags = [flag for flag in self._flags if flag != "--fresh"]
        return ready

    @property
    def pid(self) -> int:
        assert self._child is not None, "the stack is not running"
        return self._child.pid

    def stop(self) -> None:
        if self._child is not None:
            _stop_child(self._child)
            self._child = None

    def kill(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None


def _flags(options: dict[str, Any]) -> list[str]:
    flags = {
        "idle_timeout": "--idle-timeout",
        "max_lifetime": "--max-lifetime",
        "management_latency": "--management-latency",
        "management_throttle_rate": "--management-throttle-rate",
        "log_level": "--log-level",
        "functions_dir": "--functions-dir",
        "presence_grace": "--presence-grace",
        "management_port": "--management-port",
    }
    unknown = set(options) - set(flags) - {"record_events", "reload", "breaks", "fresh", "data_dir", "port"}
    if unknown:
        raise TypeError(f"unknown local stack options: {', '.join(sorted(unknown))}")
    command = [part for name, flag in flags.items() if name in options for part in (flag, str(options[name]))]
    if options.get("record_events"):
        command.append("--record-events")
    if options.get("reload") is False:
        command.append("--no-reload")
    if options.get("fresh"):
        command.append("--fresh")
    for name in options.get("breaks", ()):
        command += ["--break", name]
    return command


def _wait_until_ready(child: subprocess.Popen[bytes], ready_file: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not ready_file.exists():
        if child.poll() is not None:
            raise RuntimeError(f"the local stack exited with {child.returncode}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the local stack did not start in {STARTUP_TIMEOUT_S:.0f} s:\n{log_path.read_text()}"
            )
        time.sleep(0.05)
    ready: dict[str, Any] = json.loads(ready_file.read_text())
    return ready


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        # Ctrl-C: sockets closed with 1001, $disconnect run, moto stopped.
        child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _running_stack(ready: dict[str, Any], log_path: Path | None, options: dict[str, Any]) -> RunningStack:
    urls = ready["urls"]
    management_root = urls["management"].rsplit("/", 1)[0]
    return RunningStack(
        http_url=urls["web"],
        websocket_url=urls["websocket"],
        management_url=urls["management"],
        cognito_url=urls["cognito"],
        config=ready["config"],
        aws_endpoint=ready["resources"]["awsEndpoint"],
        table_names=ready["resources"]["tableNames"],
        log_path=log_path,
        moto_pid=ready["resources"]["motoPid"],
        handler_pid=ready["resources"]["handlerPid"] or 0,
        _events_url=f"{management_root}/_local/events" if options.get("record_events") else "",
    )


def _resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
