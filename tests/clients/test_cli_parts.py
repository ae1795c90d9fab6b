"""The command-line client's adapters and rendering, with fakes instead of AWS."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from clients.cli.auth import AuthError, CognitoAuth
from clients.cli.config import ChatConfig, ConfigError, config_url, load_from_stack
from clients.cli.main import NoPassword, build_parser, read_password
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


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("cn-north-1", "https://cognito-idp.cn-north-1.amazonaws.com.cn/"),
        ("cn-northwest-1", "https://cognito-idp.cn-northwest-1.amazonaws.com.cn/"),
        ("cn-south-9", "https://cognito-idp.cn-south-9.amazonaws.com.cn/"),  # not yet in botocore's list
        ("us-gov-west-1", "https://cognito-idp.us-gov-west-1.amazonaws.com/"),
        ("ap-southeast-5", "https://cognito-idp.ap-southeast-5.amazonaws.com/"),
    ],
)
def test_the_cognito_endpoint_has_the_partitions_dns_suffix(region: str, endpoint: str) -> None:
    """--stack in a China region signs in at amazonaws.com.cn, elsewhere at amazonaws.com."""
    outputs = {"WebSocketUrl": "wss://x", "Region": region, "UserPoolId": "p", "UserPoolClientId": "c"}
    config = load_from_stack("ServerlessChat", cloudformation=FakeCloudFormation(outputs))
    assert config.cognito_endpoint == endpoint


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


def _entry(partner: str | None, unread: int) -> dict[str, Any]:
    return {"with": partner, "last": None, "unread": unread, "readUpTo": None, "theirReadUpTo": None}


def test_the_inbox_shows_one_line_per_private_conversation_with_unread_messages() -> None:
    """Unread counts on connect: DMs only, none for zero, and 100 reads as 100+."""
    inbox = {"type": "inbox", "conversations": [_entry(None, 7), _entry("bob", 3), _entry("carol", 0)]}
    inbox["conversations"].append(_entry("dave", 100))
    assert format_event(inbox, "alice") == "* 3 unread from bob\n* 100+ unread from dave"
    assert format_event({"type": "inbox", "conversations": [_entry(None, 2)]}, "alice") is None


def test_a_history_page_prints_oldest_first_and_says_when_there_are_no_more() -> None:
    """/history shows the page as message lines between a heading and where to go on (or that it ended)."""
    page = [_message("bob", "alice", "first"), _message("alice", "bob", "second")]
    more = {"type": "history", "with": "bob", "messages": page, "more": True}
    assert format_event(more, "alice") == (
        "* earlier with bob:\n--:-- [from bob] first\n--:-- [to bob] second\n"
        "* /history bob again for older ones"
    )
    last = {"type": "history", "with": None, "messages": [_message("bob", None, "hi")], "more": False}
    assert format_event(last, "alice") == "* earlier in public:\n--:-- bob: hi\n* no older messages in public"
    empty = {"type": "history", "with": "bob", "messages": [], "more": False}
    assert format_event(empty, "alice") == "* no older messages with bob"


def test_a_refused_sync_says_it_will_try_again() -> None:
    """The retry of a refused sync is one line, not a raw error frame."""
    event = {"type": "sync-retry", "code": "rate_limited", "message": "x", "retryIn": 2.5}
    assert format_event(event, "alice") == "* could not catch up yet (rate_limited); trying again in 2.5s"


def test_without_a_password_or_a_terminal_it_says_how_to_give_one(monkeypatch, tmp_path) -> None:
    """No CHAT_PASSWORD, no --password-file, no terminal: NoPassword naming both; nothing is asked."""
    monkeypatch.delenv("CHAT_PASSWORD", raising=False)

    def prompt(_: str) -> str:
        raise AssertionError("asked without a terminal")

    with pytest.raises(NoPassword, match="set CHAT_PASSWORD or pass --password-file FILE"):
        read_password("alice", None, prompt=prompt, terminal=lambda: False)
    secret = tmp_path / "password"
    secret.write_text("from-a-file-1\nignored\n")
    assert read_password("alice", str(secret), prompt=prompt, terminal=lambda: False) == "from-a-file-1"
    monkeypatch.setenv("CHAT_PASSWORD", "from-the-env-1")
    assert read_password("alice", None, prompt=prompt, terminal=lambda: False) == "from-the-env-1"


def test_a_terminal_is_asked_and_ctrl_d_there_is_no_password(monkeypatch) -> None:
    """On a terminal the prompt asks; Ctrl-D (EOFError) or an empty answer is a clean NoPassword."""
    monkeypatch.delenv("CHAT_PASSWORD", raising=False)
    assert read_password("alice", None, prompt=lambda _: "typed-1", terminal=lambda: True) == "typed-1"

    def ctrl_d(_: str) -> str:
        raise EOFError

    for prompt in (ctrl_d, lambda _: ""):
        with pytest.raises(NoPassword):
            read_password("alice", None, prompt=prompt, terminal=lambda: True)
