"""The local Lambda runtime's worker threads: warm ones first, new ones only when all are busy, and
one key's backlog never ahead of another key's call."""

from __future__ import annotations

import threading

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
    executor = WarmFirstExecutor(max_workers=4)
    release = threading.Event()
    order: list[str] = []
    flood = [executor.submit_for("flooder", _wait_and_note, release, order, f"flood {n}") for n in range(500)]
    victim = executor.submit_for("victim", _wait_and_note, release, order, "victim")
    release.set()
    victim.result(timeout=5)
    for future in flood:
        future.result(timeout=5)
    # Four flood calls were running when the victim came; a freed thread took one more, then it.
    assert order.index("victim") <= 8
    executor.shutdown()


def test_the_backlogs_are_served_in_turn_each_in_order() -> None:
    """With the only thread busy, two keys' queued calls then run alternately, each key's in order."""
    executor = WarmFirstExecutor(max_workers=1)
    release = threading.Event()
    busy = executor.submit(release.wait)
    order: list[str] = []
    futures = [executor.submit_for(key, order.append, f"{key}{n}") for key in "ab" for n in range(3)]
    release.set()
    for future in [busy, *futures]:
        future.result(timeout=5)
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]
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
