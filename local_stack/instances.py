"""Worker threads that behave like Lambda's execution environments: warm ones are reused first,
and no caller's backlog delays another caller's invocation.

Lambda sends an invocation to an environment that is free, and one that has just finished is
warm: its module-level state (clients, kept-alive connections) is in use. ``ThreadPoolExecutor``
hands work to the thread that has waited longest instead, so a stack with 64 threads spread
consecutive calls over all of them, and each fan-out found a thread whose connections to the
management API had to be opened anew (200 at a time). Here the thread that finished last takes
the next call; new threads start only when every existing one is busy.

Fairness. On AWS every invocation runs in its own execution environment, in parallel: nothing
queues one client's frames ahead of another's, and one client's flood does not take the CPU of
another client's invocation. This emulator has a bounded number of threads on a few shared cores,
so it keeps that property the way it can:

- Work submitted for a key (``submit_for``; the gateway's key is the connection id) waits in that
  key's own backlog, and a freed thread serves the backlogs round-robin. An invocation submitted
  after a flood of 500 frames on another connection waits for what is running, not for the flood.
- At most ``max_running_per_key`` invocations of one key run at once. With 64 threads on 2 cores,
  64 running invocations of one flooder would leave another caller's thread 1/64 of the CPU; on
  AWS that caller's invocation has an environment of its own. Work submitted without a key
  (``submit``) has no such cap and shares one backlog.

A key's backlog is kept in arrival order, as API Gateway hands one connection's frames on.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any

Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
Inbox = queue.SimpleQueue[tuple[Hashable, Work] | None]  # a worker thread's: its next call and key
# The key of work submitted without one: one shared backlog, no cap on how much of it runs.
_UNKEYED: Hashable = object()
DEFAULT_MAX_RUNNING_PER_KEY = 4


class WarmFirstExecutor(Executor):
    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str = "worker",
        *,
        max_running_per_key: int = DEFAULT_MAX_RUNNING_PER_KEY,
    ) -> None:
        self._max_workers = max_workers
        self._max_running_per_key = max(1, max_running_per_key)
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[Inbox] = []  # the most recently idle last
        self._workers: list[Inbox] = []
        # Keys with work waiting, in the order they are next served (round-robin).
        self._backlogs: OrderedDict[Hashable, deque[Work]] = OrderedDict()
        self._running: dict[Hashable, int] = {}
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
            if not self._may_run(lane):
                self._backlogs.setdefault(lane, deque()).append(work)
            elif self._idle:
                self._hand(self._idle.pop(), lane, work)
            elif len(self._workers) < self._max_workers:
                self._start(lane, work)
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

    def _may_run(self, lane: Hashable) -> bool:
        # Behind its own backlog (arrival order), and within the key's share of the threads.
        if lane in self._backlogs:
            return False
        return lane is _UNKEYED or self._running.get(lane, 0) < self._max_running_per_key

    def _hand(self, inbox: Inbox, lane: Hashable, work: Work) -> None:
        self._running[lane] = self._running.get(lane, 0) + 1
        inbox.put((lane, work))

    def _next(self) -> tuple[Hashable, Work] | None:
        """The first waiting work, round-robin over the keys, of a key below its cap."""
        for lane in self._backlogs:
            if lane is _UNKEYED or self._running.get(lane, 0) < self._max_running_per_key:
                backlog = self._backlogs[lane]
                work = backlog.popleft()
                if backlog:
                    self._backlogs.move_to_end(lane)
                else:
                    del self._backlogs[lane]
                return lane, work
        return None

    def _start(self, lane: Hashable, work: Work) -> None:
        inbox: Inbox = queue.SimpleQueue()
        self._workers.append(inbox)
        name = f"{self._prefix}_{len(self._workers) - 1}"
        threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        self._hand(inbox, lane, work)

    def _work(self, inbox: Inbox) -> None:
        while (item := inbox.get()) is not None:
            lane, (future, fn, args, kwargs) = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, like the stdlib's
                    future.set_exception(exc)
            del item, future, fn, args, kwargs
            with self._lock:
                self._finished(lane)
                following = self._next()
                if following is not None:
                    self._hand(inbox, *following)
                elif not self._shut_down:
                    self._idle.append(inbox)
                self._start_released()

    def _start_released(self) -> None:
        """Work that a finished call's freed share let run, on idle (or new) threads."""
        while self._idle or (len(self._workers) < self._max_workers and not self._shut_down):
            following = self._next()
            if following is None:
                return
            if self._idle:
                self._hand(self._idle.pop(), *following)
            else:
                self._start(*following)

    def _finished(self, lane: Hashable) -> None:
        left = self._running[lane] - 1
        if left:
            self._running[lane] = left
        else:
            del self._running[lane]
