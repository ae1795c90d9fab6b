"""moto's server in a process of its own, with its state kept in the data directory.

moto answers one request at a time (``moto_server.py``) and does its work in Python: in the same
process as the gateway and the handlers, every DynamoDB request competed with the sockets and the
fan-out for one interpreter lock. In a child process it runs beside them, on another core; the
handlers reach it over HTTP exactly as before.

The child loads the state (``persistence.py``) before it serves, and saves it when told to stop,
when its parent goes away (the pipe closes, even after a ``kill -9`` of the parent), or on
SIGTERM. It ignores Ctrl-C: the parent, stopping, still runs every ``$disconnect`` against it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MotoStarted:
    url: str
    restored: bool


def _serve(pipe: Connection, host: str, data_dir: str | None, fresh: bool) -> None:
    import logging
    import threading

    from local_stack.moto_server import AtomicMotoServer
    from local_stack.persistence import StateError, StateStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = AtomicMotoServer(host)
    store = StateStore(Path(data_dir), server) if data_dir else None
    try:
        restored = store.open(fresh=fresh) if store else False
    except StateError as exc:
        pipe.send({"error": str(exc)})
        return
    server.start()
    pipe.send({"url": server.url, "restored": restored})

    def wait_for_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            pipe.recv()  # "stop", or EOFError when the parent is gone
        stop.set()

    threading.Thread(target=wait_for_parent, daemon=True).start()
    stop.wait()
    if store is not None:
        store.close()
    server.stop()
    with contextlib.suppress(OSError, ValueError):
        pipe.send({"stopped": True})


class MotoProcess:
    """The child process: ``url`` once started; ``stop()`` saves and ends it."""

    def __init__(self, host: str, *, data_dir: Path | None, fresh: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, host, str(data_dir) if data_dir else None, fresh), name="moto"
        )
        self._process.start()
        child_end.close()
        if not self._pipe.poll(START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError(f"moto's server did not start in {START_TIMEOUT_S:.0f} s")
        started: dict[str, Any] = self._pipe.recv()
        if "error" in started:
            self._process.join()
            raise RuntimeError(started["error"])
        self.started = MotoStarted(started["url"], started["restored"])

    @property
    def url(self) -> str:
        return self.started.url

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def stop(self) -> None:
        if not self._process.is_alive():
            return
        try:
            self._pipe.send("stop")
            self._pipe.poll(STOP_TIMEOUT_S)
        except (OSError, EOFError):
            pass
        self._process.join(timeout=STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
