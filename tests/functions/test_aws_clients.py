"""chat.aws_clients.unless_error: which SDK failures are answers and which are DependencyErrors,
through the directory and the connection probe, on real botocore clients with stubbed replies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from chat import aws_clients
from chat.directory import UserDirectory
from chat.errors import DependencyError
from chat.probe import ConnectionProbe

NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)


def stubbed(service: str, **options: str) -> Iterator[tuple[object, Stubber]]:
    client = aws_clients.client(service, config=NO_RETRIES, region_name="us-east-1", **options)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def cognito() -> Iterator[tuple[object, Stubber]]:
    yield from stubbed("cognito-idp")


@pytest.fixture
def management() -> Iterator[tuple[object, Stubber]]:
    yield from stubbed(
        "apigatewaymanagementapi", endpoint_url="https://example.execute-api.us-east-1.amazonaws.com/prod"
    )


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "Call")


def test_the_expected_error_is_an_answer_and_any_other_a_dependency_error() -> None:
    """The named code gives None; another code, or no answer, is a DependencyError naming what failed."""

    def failing(exc: Exception) -> object:
        raise exc

    assert aws_clients.unless_error("GoneException", "ask", lambda: {"ok": 1}) == {"ok": 1}
    assert (
        aws_clients.unless_error("GoneException", "ask", lambda: failing(client_error("GoneException")))
        is None
    )
    for exc in (client_error("ThrottlingException"), EndpointConnectionError(endpoint_url="https://x")):
        with pytest.raises(DependencyError, match="could not ask") as caught:
            aws_clients.unless_error("GoneException", "ask", lambda exc=exc: failing(exc))
        assert caught.value.__cause__ is exc


def test_a_user_cognito_does_not_know_does_not_exist(cognito: tuple[object, Stubber]) -> None:
    """UserNotFoundException is "no such user"; a user Cognito returns exists and is remembered."""
    client, stubber = cognito
    directory = UserDirectory("us-east-1_pool", client=client)  # type: ignore[arg-type]
    stubber.add_client_error(
        "admin_get_user", service_error_code="UserNotFoundException", http_status_code=400
    )
    stubber.add_response("admin_get_user", {"Username": "bob"})
    assert directory.exists("nobody") is False
    assert directory.exists("bob") is True
    assert directory.exists("bob") is True  # remembered: no second call (the stubber has none left)


def test_a_failing_cognito_is_a_dependency_error(cognito: tuple[object, Stubber]) -> None:
    """Any other Cognito failure is not an answer about the user."""
    client, stubber = cognito
    stubber.add_client_error(
        "admin_get_user", service_error_code="TooManyRequestsException", http_status_code=429
    )
    with pytest.raises(DependencyError, match="could not look the user up"):
        UserDirectory("us-east-1_pool", client=client).exists("bob")  # type: ignore[arg-type]


def test_a_connection_is_gone_only_on_410(management: tuple[object, Stubber]) -> None:
    """GoneException means gone; an answer means it exists; another failure is a DependencyError."""
    client, stubber = management
    probe = ConnectionProbe("https://unused", region="us-east-1", client=client)  # type: ignore[arg-type]
    stubber.add_client_error("get_connection", service_error_code="GoneException", http_status_code=410)
    stubber.add_response("get_connection", {"ConnectedAt": "2026-12-01T10:00:00Z"})
    stubber.add_client_error(
        "get_connection", service_error_code="LimitExceededException", http_status_code=429
    )
    assert probe.exists("gone=") is False
    assert probe.exists("here=") is True
    with pytest.raises(DependencyError, match="could not ask whether a connection exists"):
        probe.exists("unsure=")
