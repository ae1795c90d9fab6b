"""Load on the local stack: many sessions per user, a steady stream of public and private messages,
sessions dropped and resumed; then, for every session, what it received live plus what it got by
``sync`` is exactly what the Messages table holds visible to its user (no gap, no extra, no
conflicting duplicate), each sender's messages stored in the order sent, no private message seen
by anyone else. The short run is part of ``make test``; ``make soak`` runs the long one."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator

import pytest

from local_stack.testing import RunningStack, running_stack
from tests.reliability.load import Figures, LoadPlan, check, create_users, run_load

SHORT = LoadPlan(users=25, sessions_per_user=4, seconds=10, messages_per_second=8, drops_per_second=1)
SOAK = LoadPlan(
    users=250, sessions_per_user=4, seconds=65, messages_per_second=2, private_share=0.75, drops_per_second=1
)


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


@pytest.fixture(scope="module")
def load_stack() -> Iterator[RunningStack]:
    """A stack of its own, so its tables hold exactly what the load run sent."""
    raise_file_limit(8192)  # the stack's child process inherits it: a socket each side per session
    with running_stack(log_level="ERROR") as running:
        yield running


def run(stack: RunningStack, plan: LoadPlan) -> Figures:
    users = create_users(stack, plan.users)
    started = time.monotonic()
    try:
        sessions, reconnects = asyncio.run(run_load(stack, users, plan))
    except BaseException:
        print(
            "\n".join(line[:400] for line in stack.log().splitlines() if "ERROR" in line or "Error" in line)
        )
        raise
    figures = check(stack, sessions, time.monotonic() - started, reconnects)
    print(f"\nload: {figures.summary()}; live out of order: {figures.live_out_of_order}")
    return figures


def test_short_load_loses_nothing(load_stack: RunningStack) -> None:
    """100 sessions of 25 users for 10 s with drops and resumes: every session holds exactly its messages."""
    figures = run(load_stack, SHORT)
    assert figures.lost == 0 and figures.foreign_private == 0
    assert figures.reconnects >= 5 and figures.public and figures.private


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_soak_1000_connections_loses_nothing(load_stack: RunningStack) -> None:
    """1,000 sessions of 250 users for over a minute with drops and resumes: nothing lost, nothing leaked."""
    figures = run(load_stack, SOAK)
    assert figures.connections == 1000 and figures.seconds >= 60
    assert figures.lost == 0 and figures.foreign_private == 0
    assert figures.reconnects >= 60
