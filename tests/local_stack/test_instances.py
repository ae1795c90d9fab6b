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


def test_one_key_runs_at_most_its_cap_and_another_key_starts_at_once() -> None:
    """A flood on one key holds max_running_per_key threads; another key's call runs on a free
    thread while the flood waits, and the flood's backlog drains, never more than the cap at once."""
    executor = WarmFirstExecutor(max_workers=8, max_running_per_key=3)
    release, running = threading.Event(), _Gauge()
    flood = [executor.submit_for("flooder", running.hold, release, n) for n in range(30)]
    assert running.wait_for(3) and running.peak == 3
    assert executor.submit_for("victim", lambda: "ran").result(timeout=5) == "ran"
    release.set()
    assert [future.result(timeout=5) for future in flood] == list(range(30))
    # The first three are the first submitted; after them, calls that start side by side may record
    # their start in either order, so only the set is certain (the order: the test below).
    assert set(running.started[:3]) == {0, 1, 2}
    assert sorted(running.started) == list(range(30)) and running.peak == 3
    executor.shutdown()


class _Gauge:
    """Counts the calls running at once, the most ever, and the order they started in."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.started: list[int] = []
        self.changed = threading.Condition()

    def hold(self, release: threading.Event, n: int) -> int:
        with self.changed:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.started.append(n)
            self.changed.notify_all()
        release.wait(timeout=5)
        with self.changed:
            self.now -= 1
        return n

    def wait_for(self, running: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.now == running, timeout=5)


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
