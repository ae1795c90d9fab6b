"""The handlers in a process of their own, as Lambda runs functions in environments apart from API
Gateway's.

In the stack's process the gateway, the management API and every handler shared one interpreter
lock: while a handler opened its connections to the management API and signed its posts (a public
message is 200 of them), the gateway could neither take the posts nor write the frames. Here the
handlers run in a child process and post over HTTP exactly as before; the gateway's process keeps
its lock for the sockets, on the other core.

The stack's process decides what runs when: each invocation still waits for a thread of the
runtime's ``WarmFirstExecutor`` there, and that thread hands the call to the child and waits for
its answer. The child runs every call it is given at once, on a thread of its own pool (as many
threads as the stack's, so none waits), with the very ``LambdaRuntime`` code the stack runs in
threads otherwise: same context object, same imports, same reload.

``python -m local_stack.handler_process --fd N --code-root PATH`` is the child. Messages are
pickled over a socket pair (``multiprocessing.connection``); the child ends when the socket closes,
so it never outlives the stack, even after a ``kill -9``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 10.0


class HandlerError(Exception):
    """A handler's exception that cannot cross processes as itself (subclassed under its name)."""


@dataclass(frozen=True)
class _Described:
    """What crosses instead of an exception that does not pickle: its type's name and message."""

    type_name: str
    message: str


@functools.cache
def _error_class(type_name: str) -> type[HandlerError]:
    return type(type_name, (HandlerError,), {})


class HandlerProcess:
    """The parent's side: ``call``, ``reload`` and ``preload`` block until the child answers, and
    may be called from many threads at once."""

    def __init__(self, *, region: str, account_id: str, code_root: Path | None, max_workers: int) -> None:
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "local_stack.handler_process", "--fd", str(theirs.fileno())]
        command += ["--region", region, "--account-id", account_id, "--max-workers", str(max_workers)]
        if code_root is not None:
            command += ["--code-root", str(code_root)]
        self._process = subprocess.Popen(command, pass_fds=[theirs.fileno()])  # noqa: S603 - our own module
        theirs.close()
        self._connection = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._waiting: dict[int, Future[Any]] = {}
        self._waiting_lock = threading.Lock()
        self._ids = itertools.count()
        self._reader = threading.Thread(target=self._read_answers, name="handler-process", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def call(self, function: Any, event: Any, request_id: str, started: float) -> Any:
        return self._ask("call", function, event, request_id, started)

    def reload(self) -> int:
        count: int = self._ask("reload")
        return count

    def preload(self, functions: list[Any]) -> Future[Any]:
        """Import the handlers there, without waiting: the calls sent after it wait there instead.
        The answer is the failures by handler path, as the stack's own import reports them."""
        return self._send("preload", functions)

    def close(self) -> None:
        self._connection.close()  # the child sees the end of its socket and exits
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _ask(self, kind: str, *args: Any) -> Any:
        return self._send(kind, *args).result()

    def _send(self, kind: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._waiting_lock:
            number = next(self._ids)
            self._waiting[number] = future
        try:
            with self._send_lock:
                self._connection.send((number, kind, args))
        except OSError:
            with self._waiting_lock:
                self._waiting.pop(number, None)
            raise
        return future

    def _read_answers(self) -> None:
        while True:
            try:
                number, ok, value = self._connection.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001, S112 - an answer that does not unpickle: that call times out
                continue
            with self._waiting_lock:
                future = self._waiting.pop(number, None)
            if future is None:
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(_exception(value))
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(RuntimeError("the handlers' process has ended"))


def portable(error: BaseException) -> BaseException | _Described:
    """``error`` itself when it survives pickling, else its type's name and its message."""
    try:
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
        if type(copy) is type(error) and str(copy) == str(error):
            return error
    except Exception:  # noqa: BLE001, S110 - any failure to pickle means: send a description
        pass
    return _Described(type(error).__name__, str(error))


def _exception(value: BaseException | _Described) -> BaseException:
    if isinstance(value, _Described):
        return _error_class(value.type_name)(value.message)
    return value


# -- the child


def serve(
    connection: Connection, *, region: str, account_id: str, code_root: Path | None, max_workers: int
) -> None:
    from local_stack.instances import WarmFirstExecutor
    from local_stack.lambdas import LambdaRuntime

    # Function names come whole with each call: the stack's name is not needed here.
    runtime = LambdaRuntime(region=region, account_id=account_id, stack_name="", code_root=code_root)
    pool = WarmFirstExecutor(max_workers=max_workers, thread_name_prefix="handler")
    send_lock = threading.Lock()

    def answer(number: int, ok: bool, value: Any) -> None:
        with send_lock:
            try:
                connection.send((number, ok, value))
            except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
                if not ok or isinstance(exc, OSError):
                    raise
                connection.send((number, False, _Described("TypeError", f"the answer cannot be sent: {exc}")))

    def run(number: int, kind: str, args: tuple[Any, ...]) -> None:
        try:
            if kind == "call":
                value = runtime.run(*args)
            elif kind == "reload":
                value = runtime.reload()
            else:
                value = {name: portable(error) for name, error in runtime.preload(*args).items()}
        except BaseException as exc:  # noqa: BLE001 - whatever the handler raised goes back to the caller
            answer(number, False, portable(exc))
            return
        answer(number, True, value)

    frozen = False
    while True:
        try:
            number, kind, args = connection.recv()
        except (EOFError, OSError):
            break
        if kind == "call":
            pool.submit(run, number, kind, args)
            continue
        run(number, kind, args)  # reload and preload: in order, before any call sent after them
        if not frozen:
            gc.freeze()  # the imported code is here to stay: full collections need not walk it
            frozen = True
    pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack.handler_process")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--account-id", required=True)
    parser.add_argument("--max-workers", type=int, default=64)
    parser.add_argument("--code-root", type=Path, default=None)
    args = parser.parse_args(argv)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the stack, which then stops us
    connection = Connection(args.fd)
    try:
        serve(
            connection,
            region=args.region,
            account_id=args.account_id,
            code_root=args.code_root,
            max_workers=args.max_workers,
        )
    finally:
        connection.close()
        os._exit(0)  # threads still inside a timed-out handler do not hold the exit up


if __name__ == "__main__":
    # By its module's name, not as __main__: what the child pickles must unpickle in the parent.
    from local_stack.handler_process import main as child_main

    child_main()
