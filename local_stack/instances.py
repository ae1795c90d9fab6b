"""Worker threads that behave like Lambda's execution environments: warm ones are reused first,
and no caller's backlog delays another caller's invocation.

Lambda sends an invocation to an environment that is free, and one that has just finished is
warm: its module-level state (clients, kept-alive connections) is in use. ``ThreadPoolExecutor``
hands work to the thread that has waited longest instead, so a stack with 64 threads spread
consecutive calls over all of them, and each fan-out found a thread whose connections to the
management API had to be opened anew (200 at a time). Here the thread that finished last takes
the next call; new threads start only when every existing one is busy.

Fairness. On AWS every invocation runs in its own execution environment, in parallel: nothing
queues one client's frames ahead of another's. This emulator has a bounded number of threads, so
when all are busy, work submitted for a key (``submit_for``; the gateway's key is the connection
id) waits in that key's own backlog, in arrival order, and a freed thread serves the backlogs
round-robin. An invocation submitted after a flood of 500 frames on another connection waits for
one of the calls already running to finish, not for the flood. Work submitted without a key
(``submit``) shares one backlog, served in the same turn as the keys'.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any

Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
Inbox = queue.SimpleQueue[Work | None]  # a worker thread's: its next call, None to stop
# The key of work submitted without one: one shared backlog.
_UNKEYED: Hashable = object()


class WarmFirstExecutor(Executor):
    def __init__(self, max_workers: int, thread_name_prefix: str = "worker") -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[Inbox] = []  # the most recently idle last
        self._workers: list[Inbox] = []
        # Keys with work waiting, in the order they are next served (round-robin).
        self._backlogs: OrderedDict[Hashable, deque[Work]] = OrderedDict()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.submit_for(None, fn, *args, **kwargs)

    def submit_for(
        self, key: Hashable | None, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        """Like ``submit``, with the work queued behind ``key``'s own (None: the shared backlog)."""
        lane = _UNKEYED if key is None else key
        future: Future[Any] = Future()
        work: Work = (future, fn, args, kwargs)
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new calls after shutdown")
            # A thread is idle only while every backlog is empty, so a key's calls keep their order.
            if self._idle:
                self._idle.pop().put(work)
            elif len(self._workers) < self._max_workers:
                self._start(work)
            else:
                self._backlogs.setdefault(lane, deque()).append(work)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                for backlog in self._backlogs.values():
                    for future, *_ in backlog:
                        future.cancel()
                self._backlogs.clear()
            for inbox in self._workers:
                inbox.put(None)

    def _next(self) -> Work | None:
        """The next waiting call: the first key's oldest, that key then going to the back."""
        if not self._backlogs:
            return None
        lane, backlog = next(iter(self._backlogs.items()))
        work = backlog.popleft()
        if backlog:
            self._backlogs.move_to_end(lane)
        else:
            del self._backlogs[lane]
        return work

    def _start(self, work: Work) -> None:
        inbox: Inbox = queue.SimpleQueue()
        self._workers.append(inbox)
        name = f"{self._prefix}_{len(self._workers) - 1}"
        threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        inbox.put(work)

    def _work(self, inbox: Inbox) -> None:
        while (work := inbox.get()) is not None:
            future, fn, args, kwargs = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, like the stdlib's
                    future.set_exception(exc)
            del work, future
            with self._lock:
                following = self._next()
                if following is not None:
                    inbox.put(following)
                elif not self._shut_down:
                    self._idle.append(inbox)
