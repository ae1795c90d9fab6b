"""What every test shares: a fake AWS account on 127.0.0.1 only, tracing off; and the in-process
chat world (moto's server and the management-API double once per session, fresh tables and user
pool per test) for the handler, fault and benchmark-smoke tests."""

from __future__ import annotations

import os

# Never reach AWS from a test: fake credentials, one region, metrics namespace set.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessChatTests",
    "POWERTOOLS_SERVICE_NAME": "chat",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",  # the major version it may run on
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
}.items():
    os.environ.setdefault(_name, _value)

# Imported after the environment is set: Powertools reads it when chat.observability is imported.
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from local_stack.moto_server import AtomicMotoServer  # noqa: E402
from tests.support.management_double import ManagementApiDouble  # noqa: E402
from tests.support.world import ChatWorld  # noqa: E402


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
