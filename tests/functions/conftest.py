"""Fixtures for the handler tests: one moto server and one management-API double per session,
fresh tables and a fresh user pool per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.moto_server import AtomicMotoServer
from tests.support.management_double import ManagementApiDouble
from tests.support.world import ChatWorld


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = AtomicMotoServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def management_double() -> Iterator[ManagementApiDouble]:
    double = ManagementApiDouble().start()
    yield double
    double.stop()


@pytest.fixture
def world(
    moto_url: str, management_double: ManagementApiDouble, monkeypatch: pytest.MonkeyPatch
) -> ChatWorld:
    management_double.reset()
    return ChatWorld(moto_url, management_double, monkeypatch)
