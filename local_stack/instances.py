"""Worker threads that behave like Lambda's execution environments: warm ones are reused first.

Lambda sends an invocation to an environment that is free, and one that has just finished is
warm: its module-level state (clients, kept-alive connections) is in use. ``ThreadPoolExecutor``
hands work to the thread that has waited longest instead, so a stack with 64 threads spread
consecutive calls over all of them, and each fan-out found a thread whose connections to the
management API had to be opened anew (200 at a time). Here the thread that finished last takes
the next call; new threads start only when every existing one is busy.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WarmFirstExecutor(Executor):
    def __init__(self, max_workers: int, thread_name_prefix: str = "worker") -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Work | None]] = []  # the most recently idle last
        self._workers: list[queue.SimpleQueue[Work | None]] = []
        self._backlog: deque[Work] = deque()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        work: Work = (future, fn, args, kwargs)
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new calls after shutdown")
            if self._idle:
                self._idle.pop().put(work)
            elif len(self._workers) < self._max_workers:
                self._start(work)
            else:
                self._backlog.append(work)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                while self._backlog:
                    self._backlog.popleft()[0].cancel()
            for inbox in self._workers:
                inbox.put(None)

    def _start(self, work: Work) -> None:
        inbox: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._workers.append(inbox)
        name = f"{self._prefix}_{len(self._workers) - 1}"
        threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        inbox.put(work)

    def _work(self, inbox: queue.SimpleQueue[Work | None]) -> None:
        while (work := inbox.get()) is not None:
            future, fn, args, kwargs = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, like the stdlib's
                    future.set_exception(exc)
            del work, future
            with self._lock:
                if self._backlog:
                    inbox.put(self._backlog.popleft())
                elif not self._shut_down:
                    self._idle.append(inbox)
