"""The command-line client's adapters and rendering, with fakes instead of AWS."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from clients.cli.auth import AuthError, CognitoAuth
from clients.cli.config import ChatConfig, ConfigError, config_url, load_from_stack
from clients.cli.main import build_parser
from clients.cli.render import format_event
from clients.cli.session import url_with_token

CONFIG = ChatConfig("ws://127.0.0.1:1/local", "us-east-1", "pool", "client", "http://127.0.0.1:2/cognito")


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


def test_a_stacks_outputs_make_a_config_with_the_regional_cognito_endpoint() -> None:
    """--stack reads WebSocketUrl, Region, UserPoolId and UserPoolClientId from the stack's outputs."""
    outputs = {
        "WebSocketUrl": "wss://abc.execute-api.eu-west-1.amazonaws.com/prod",
        "Region": "eu-west-1",
        "UserPoolId": "eu-west-1_x",
        "UserPoolClientId": "client",
    }
    config = load_from_stack("ServerlessChat", cloudformation=FakeCloudFormation(outputs))
    assert config.websocket_url == outputs["WebSocketUrl"]
    assert config.cognito_endpoint == "https://cognito-idp.eu-west-1.amazonaws.com/"


def test_a_missing_value_is_an_error_that_names_it() -> None:
    """A stack without the outputs a client needs fails loudly, naming what is missing."""
    with pytest.raises(ConfigError, match="userPoolClientId"):
        load_from_stack("Other", cloudformation=FakeCloudFormation({"Region": "eu-west-1"}))


@pytest.mark.parametrize(
    ("given", "fetched"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/config.json"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/config.json"),
        ("http://host/chat/config.json", "http://host/chat/config.json"),
    ],
)
def test_url_may_be_the_stack_or_its_config(given: str, fetched: str) -> None:
    """--url takes the local stack's address or its /config.json."""
    assert config_url(given) == fetched


def test_the_token_goes_in_the_query_string_url_encoded() -> None:
    """Browsers cannot set headers on a WebSocket, so every client passes ?token=."""
    assert url_with_token("ws://h/local", "a+b/c") == "ws://h/local?token=a%2Bb%2Fc"
    assert url_with_token("ws://h/local?x=1", "t") == "ws://h/local?x=1&token=t"


class FakeCognito:
    """Answers like Cognito for one user; records the calls."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.calls: list[str] = []

    def initiate_auth(self, AuthFlow: str, AuthParameters: dict[str, str], ClientId: str) -> dict[str, Any]:
        self.calls.append(AuthFlow)
        if AuthFlow == "REFRESH_TOKEN_AUTH":
            return {
                "AuthenticationResult": {"AccessToken": f"refreshed-{len(self.calls)}", "ExpiresIn": 3600}
            }
        user, password = AuthParameters["USERNAME"], AuthParameters["PASSWORD"]
        if user not in self.users:
            raise _client_error("UserNotFoundException")
        if self.users[user] != password:
            raise _client_error("NotAuthorizedException")
        result = {"AccessToken": f"signed-in-{len(self.calls)}", "RefreshToken": "r", "ExpiresIn": 3600}
        return {"AuthenticationResult": result}

    def sign_up(self, ClientId: str, Username: str, Password: str) -> dict[str, Any]:
        self.calls.append("SignUp")
        if Username in self.users:
            raise _client_error("UsernameExistsException")
        self.users[Username] = Password
        return {"UserConfirmed": True}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Operation")


def test_a_new_username_is_registered_on_first_use() -> None:
    """Signing in as an unknown user signs it up, then in."""
    cognito = FakeCognito({})
    assert CognitoAuth(CONFIG, "alice", "password1", client=cognito).access_token().startswith("signed-in")
    assert cognito.calls == ["USER_PASSWORD_AUTH", "SignUp", "USER_PASSWORD_AUTH"]


def test_a_wrong_password_for_a_taken_name_is_refused() -> None:
    """A taken username with another password stays NotAuthorized, never re-registered."""
    auth = CognitoAuth(CONFIG, "alice", "wrong-pass1", client=FakeCognito({"alice": "password1"}))
    with pytest.raises(AuthError) as refused:
        auth.access_token()
    assert refused.value.code == "NotAuthorizedException"
    assert "wrong password for 'alice', or that name is taken" in refused.value.message


def test_tokens_are_refreshed_before_they_expire_and_after_a_refusal() -> None:
    """Near expiry, or after the server refused the token, the refresh token gets a new one."""
    now = [1000.0]
    cognito = FakeCognito({"alice": "password1"})
    auth = CognitoAuth(CONFIG, "alice", "password1", client=cognito, clock=lambda: now[0])
    first = auth.access_token()
    assert auth.access_token() == first
    now[0] += 3600 - 60
    assert auth.access_token().startswith("refreshed")
    auth.invalidate()
    assert auth.access_token().startswith("refreshed")
    assert cognito.calls == ["USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN_AUTH"]


def _message(sender: str, to: str | None, text: str) -> dict[str, Any]:
    return {"type": "message", "from": sender, "to": to, "text": text, "sentAt": "not a time"}


@pytest.mark.parametrize(
    ("event", "line"),
    [
        ({"type": "message", "from": "bob", "to": None, "text": "hi", "sentAt": "x"}, "--:-- bob: hi"),
        (
            {"type": "message", "from": "alice", "to": "bob", "text": "psst", "sentAt": "x"},
            "--:-- [to bob] psst",
        ),
        (
            {"type": "message", "from": "bob", "to": "alice", "text": "yo", "sentAt": "x"},
            "--:-- [from bob] yo",
        ),
        ({"type": "presence", "user": "bob", "online": False}, "* bob went offline"),
        ({"type": "who", "users": ["alice", "bob"]}, "* online: alice, bob"),
        ({"type": "error", "code": "text_too_long", "message": "too long"}, "! text_too_long: too long"),
        ({"type": "pong"}, None),
        ({"type": "ack", "id": "m1"}, None),
    ],
)
def test_events_read_as_one_line_each(event: dict[str, Any], line: str | None) -> None:
    """Private messages are marked "to bob" / "from bob"; acks and pongs stay quiet."""
    assert format_event(event, "alice") == line


def test_options_work_before_and_after_the_subcommand() -> None:
    """`chat --user a send x` and `chat send --user a x` mean the same; defaults survive."""
    before = build_parser().parse_args(["--user", "alice", "send", "--to", "bob", "hi", "there"])
    after = build_parser().parse_args(["send", "--user", "alice", "--to", "bob", "hi", "there"])
    assert vars(before) == vars(after)
    assert before.url == "http://127.0.0.1:8080/config.json" and before.text == ["hi", "there"]
