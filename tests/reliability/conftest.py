"""Fixtures for the reliability suite: one local stack for the session, the in-process chat world
for injected faults, and the ``--soak`` switch for the long load run (``make soak``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.testing import RunningStack, User, running_stack
from tests.support.chat_client import ChatClient, OpenClient


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False, help="run the long load run (make soak)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the long load run; only with --soak (make soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="the long load run: make soak (pytest --soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


# -- the local stack, over real sockets


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with running_stack(log_level="WARNING") as running:
        yield running


@pytest.fixture
def open_client(stack: RunningStack) -> Iterator[OpenClient]:
    """Opens WebSocket clients for users; closes them all after the test."""
    clients: list[ChatClient] = []

    def make(user: User) -> ChatClient:
        clients.append(ChatClient.connect(stack, user))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


# The in-process world (moto, the management double, the handlers) comes from tests/conftest.py.
