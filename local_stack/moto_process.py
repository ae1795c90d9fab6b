"""moto's server in a process of its own, with its state kept in the data directory.

moto answers one request at a time (``moto_server.py``) and does its work in Python: in the same
process as the gateway and the handlers, every DynamoDB request competed with the sockets and the
fan-out for one interpreter lock. In a child process it runs beside them, on another core; the
handlers reach it over HTTP exactly as before.

``python -m local_stack.moto_process`` is that child: it loads the state (``persistence.py``)
before it serves, prints one JSON line (its URL, or why it cannot start), and saves the state
when told to stop, when its parent goes away (its stdin closes, even after a ``kill -9`` of the
parent), or on SIGTERM. It ignores Ctrl-C: the parent, stopping, still runs every ``$disconnect``
against it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MotoStarted:
    url: str
    restored: bool


class MotoProcess:
    """The child process: ``url`` once started; ``stop()`` saves and ends it."""

    def __init__(self, host: str, *, data_dir: Path | None, fresh: bool) -> None:
        command = [sys.executable, "-m", "local_stack.moto_process", "--host", host]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        if fresh:
            command.append("--fresh")
        self._process = subprocess.Popen(  # noqa: S603 - our own module, our own interpreter
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        started = json.loads(line) if line else {"error": "moto's process ended before it started"}
        if "error" in started:
            self._process.wait()
            raise RuntimeError(started["error"])
        self.started = MotoStarted(started["url"], started["restored"])

    @property
    def url(self) -> str:
        return self.started.url

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        if self._process.poll() is not None:
            return
        try:
            assert self._process.stdin is not None
            self._process.stdin.write("stop\n")
            self._process.stdin.close()
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack.moto_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)

    import logging

    from local_stack.moto_server import AtomicMotoServer
    from local_stack.persistence import StateError, StateStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = AtomicMotoServer(args.host)
    store = StateStore(args.data_dir, server) if args.data_dir else None
    try:
        restored = store.open(fresh=args.fresh) if store else False
    except StateError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return
    server.start()
    print(json.dumps({"url": server.url, "restored": restored}), flush=True)
    # Nobody reads the pipe after that line: anything else printed goes where the stack's output goes.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def wait_for_parent() -> None:
        sys.stdin.readline()  # "stop", or end of file when the parent is gone
        stop.set()

    threading.Thread(target=wait_for_parent, daemon=True).start()
    stop.wait()
    if store is not None:
        store.close()
    server.stop()


if __name__ == "__main__":
    main()
