"""One local stack for the whole folder (with its events recorded, and a presence grace of
``PRESENCE_GRACE`` seconds so offline frames come soon), clients closed after each test, and a
moto server of our own for each module that asks for ``server``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from local_stack_client import PRESENCE_GRACE

from local_stack.moto_server import AtomicMotoServer
from local_stack.testing import RunningStack, User, running_stack
from tests.support.chat_client import ChatClient


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with running_stack(record_events=True, log_level="WARNING", presence_grace=PRESENCE_GRACE) as running:
        yield running


@pytest.fixture
def open_client(stack: RunningStack) -> Iterator[Callable[[User], ChatClient]]:
    """Opens clients for users; closes them all after the test."""
    clients: list[ChatClient] = []

    def make(user: User) -> ChatClient:
        client = ChatClient.connect(stack, user)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[AtomicMotoServer]:
    """The local stack's moto server alone, one per module."""
    running = AtomicMotoServer().start()
    yield running
    running.stop()
