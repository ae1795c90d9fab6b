"""The local Lambda runtime's worker threads: warm ones first, new ones only when all are busy."""

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
