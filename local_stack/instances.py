"""Worker threads that behave like Lambda's execution environments: warm ones are reused first,
and no caller's backlog delays another caller's invocation.

Lambda sends an invocation to an environment that is free, and one that has just finished is
warm: its module-level state (clients, kept-alive connections) is in use. ``ThreadPoolExecutor``
hands work to the thread that has waited longest instead, so a stack with 64 threads spread
consecutive calls over all of them, and each fan-out found a thread whose connections to the
management API had to be opened anew (200 at a time). Here the thread that finished last takes
the next call; new threads start only when every existing one is busy.

Fairness. On AWS every invocation runs in its own execution environment, in parallel: nothing
queues one client's frames ahead of another's, and one client's burst takes no CPU from another's
call. Here every call shares two cores and one interpreter, so work submitted for a key
(``submit_for``; the gateway's key is the connection id) waits in that key's own backlog, in
arrival order, and a free thread serves the backlogs round-robin. A key also runs at most
``max_running_per_key`` calls at once (still side by side, as on AWS), so a flood of 500 frames on
one connection holds a few threads, not all of them, and a call for another connection starts at
once on a thread of its own. Work submitted without a key (``submit``) shares one backlog, served
in the same turn as the keys' and never capped.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any

Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
Inbox = queue.SimpleQueue[tuple[Hashable, Work] | None]  # a worker thread's: its next call, None to stop
# The key of work submitted without one: one shared backlog.
_UNKEYED: Hashable = object()


class WarmFirstExecutor(Executor):
    def __init__(
        self, max_workers: int, thread_name_prefix: str = "worker", *, max_running_per_key: int | None = None
    ) -> None:
        self._max_workers = max_workers
        self._per_key = max_running_per_key or max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[Inbox] = []  # the most recently idle last
        self._workers: list[Inbox] = []
        # Keys with work waiting, in the order they are next served (round-robin).
        self._backlogs: OrderedDict[Hashable, deque[Work]] = OrderedDict()
        self._running: Counter[Hashable] = Counter()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.submit_for(None, fn, *args, **kwargs)

    def submit_for(
        self, key: Hashable | None, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        """Like ``submit``, with the work queued behind ``key``'s own (None: the shared backlog)."""
        lane = _UNKEYED if key is None else key
        future: Future[Any] = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new calls after shutdown")
            # Through the backlog even when a thread is free: a key's calls keep their order.
            self._backlogs.setdefault(lane, deque()).append((future, fn, args, kwargs))
            self._hand_out()
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

    def _hand_out(self) -> None:
        """Give waiting calls to free threads (the warmest first), starting threads up to the limit,
        while some key with work waiting is below its cap. Called with the lock held."""
        while (lane := self._next_lane()) is not None:
            if self._idle:
                inbox = self._idle.pop()
            elif len(self._workers) < self._max_workers and not self._shut_down:
                inbox = self._start()
            else:
                return
            backlog = self._backlogs[lane]
            work = backlog.popleft()
            if backlog:
                self._backlogs.move_to_end(lane)
            else:
                del self._backlogs[lane]
            self._running[lane] += 1
            inbox.put((lane, work))

    def _next_lane(self) -> Hashable | None:
        """The first key in turn with work waiting and room to run it."""
        for lane in self._backlogs:
            if lane is _UNKEYED or self._running[lane] < self._per_key:
                return lane
        return None

    def _start(self) -> Inbox:
        inbox: Inbox = queue.SimpleQueue()
        self._workers.append(inbox)
        name = f"{self._prefix}_{len(self._workers) - 1}"
        threading.Thread(target=self._work, args=(inbox,), name=name, daemon=True).start()
        return inbox

    def _work(self, inbox: Inbox) -> None:
        while (given := inbox.get()) is not None:
            lane, (future, fn, args, kwargs) = given
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, like the stdlib's
                    future.set_exception(exc)
            del given, future, fn, args, kwargs
            with self._lock:
                self._running[lane] -= 1
                if not self._running[lane]:
                    del self._running[lane]
                if not self._shut_down:
                    self._idle.append(inbox)  # the warmest: the next call comes here
                    self._hand_out()
