"""The local Lambda runtime's worker threads: warm ones first, new ones only when all are busy, and
one key's backlog never ahead of another key's call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from local_stack.instances import WarmFirstExecutor


def test_the_thread_that_finished_last_takes_the_next_call() -> None:
    """Sequential calls all run on one warm thread, however many threads exist."""
    executor = WarmFirstExecutor(max_workers=8)
    release = threading.Event()
    busy = [executor.submit(release.wait) for _ in range(4)]  # four threads exist now
    release.set()
    for future in busy:
        future.result(timeout=5)
    names = {executor.submit(lambda: threading.current_thread().name).result(timeout=5) for _ in range(20)}
    assert len(names) == 1
    executor.shutdown()


def test_calls_beyond_max_workers_wait_for_a_free_thread() -> None:
    """With every thread busy, further calls queue and run as threads free up; errors reach the caller."""
    executor = WarmFirstExecutor(max_workers=2)
    release = threading.Event()
    running = [executor.submit(release.wait) for _ in range(2)]
    queued = executor.submit(lambda: threading.current_thread().name)
    assert not queued.done()
    release.set()
    assert queued.result(timeout=5).startswith("worker_")
    assert all(future.result(timeout=5) for future in running)
    with pytest.raises(ZeroDivisionError):
        executor.submit(lambda: 1 / 0).result(timeout=5)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(print)


def test_a_victim_submitted_after_a_flood_runs_before_the_flood_drains() -> None:
    """A call for another key, submitted behind 500 queued calls of one key, runs next, not 501st."""
    executor = WarmFirstExecutor(max_workers=4, max_running_per_key=4)
    release = threading.Event()
    order: list[str] = []
    flood = [executor.submit_for("flooder", _wait_and_note, release, order, f"flood {n}") for n in range(500)]
    victim = executor.submit_for("victim", _wait_and_note, release, order, "victim")
    release.set()
    victim.result(timeout=5)
    for future in flood:
        future.result(timeout=5)
    # Four flood calls were running when the victim came; at most one more ran before it.
    assert order.index("victim") <= 5
    executor.shutdown()


def test_one_key_runs_at_most_its_share_of_the_threads() -> None:
    """With 8 threads and a share of 2, one key's calls run two at a time; another key's start at once."""
    executor = WarmFirstExecutor(max_workers=8, max_running_per_key=2)
    release = threading.Event()
    started: list[str] = []
    flood = [executor.submit_for("flooder", _note_and_wait, release, started, "flood") for _ in range(10)]
    other = [executor.submit_for("other", _note_and_wait, release, started, "other") for _ in range(2)]
    unkeyed = [executor.submit(_note_and_wait, release, started, "unkeyed") for _ in range(4)]
    _until(lambda: len(started) == 8)
    assert sorted(started) == ["flood"] * 2 + ["other"] * 2 + ["unkeyed"] * 4
    release.set()
    for future in flood + other + unkeyed:
        future.result(timeout=5)
    assert started.count("flood") == 10
    executor.shutdown()


def test_one_keys_calls_run_in_the_order_they_came() -> None:
    """Calls of one key start in submission order, as one connection's frames are handed on."""
    executor = WarmFirstExecutor(max_workers=2, max_running_per_key=1)
    order: list[int] = []
    futures = [executor.submit_for("connection", order.append, n) for n in range(50)]
    for future in futures:
        future.result(timeout=5)
    assert order == list(range(50))
    executor.shutdown()


def test_shutdown_cancels_every_keys_backlog() -> None:
    """cancel_futures cancels what waits in each key's backlog; what runs finishes."""
    executor = WarmFirstExecutor(max_workers=1)
    release = threading.Event()
    running = executor.submit_for("a", release.wait)
    waiting = [executor.submit_for(key, print) for key in ("a", "b", None)]
    executor.shutdown(cancel_futures=True)
    assert all(future.cancelled() for future in waiting)
    release.set()
    assert running.result(timeout=5) is True


def _wait_and_note(release: threading.Event, order: list[str], name: str) -> None:
    release.wait()
    order.append(name)


def _note_and_wait(release: threading.Event, started: list[str], name: str) -> None:
    started.append(name)
    release.wait()


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
