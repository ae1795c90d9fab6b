"""A local stack to restart under open clients, and how a test tells what the restart kept."""

from __future__ import annotations

import re

from local_stack.testing import RunningStack

# A client backs off up to 30 s between attempts while the stack is down.
RECONNECT_MS = 45_000
RAW_ERROR = re.compile(r"Exception|[0-9a-z]{20,}")


def ids(stack: RunningStack) -> tuple[str, str]:
    return stack.config["userPoolId"], stack.config["userPoolClientId"]


def started_afresh(stack: RunningStack) -> None:
    """Stop the stack (if running) and start it with none of its accounts."""
    before = ids(stack)
    if stack.running:
        stack.stop()
    stack.start(fresh=True)
    assert ids(stack) != before, "a fresh start made a new user pool"


def start_keeping_accounts(stack: RunningStack) -> bool:
    """Start the stopped stack; True when it kept its user pool and app client."""
    before = ids(stack)
    stack.start()
    assert ids(stack) == before, "the data directory kept the user pool and app client"
    return True
