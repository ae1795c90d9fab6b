"""The Cognito pre-sign-up trigger: the username rule, and auto-confirmation unless turned off."""

from __future__ import annotations

from typing import Any

import pytest
from chat import config
from chat.handlers import presignup

from tests.support.world import lambda_context


def sign_up_event(
    username: str, email: str | None = None, source: str = "PreSignUp_SignUp"
) -> dict[str, Any]:
    """A pre-sign-up event as Cognito sends it."""
    attributes = {"email": email} if email else {}
    return {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": "us-east-1_example",
        "userName": username,
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "client-1"},
        "triggerSource": source,
        "request": {"userAttributes": attributes, "validationData": None},
        "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    }


@pytest.fixture(autouse=True)
def _default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.AUTO_CONFIRM, raising=False)


def sign_up(username: str, email: str | None = None, source: str = "PreSignUp_SignUp") -> dict[str, Any]:
    return presignup.handler(sign_up_event(username, email, source), lambda_context())


@pytest.mark.parametrize("username", ["alice", "Alice", "BOB_the.builder-2", "abc", "a" * 32])
def test_valid_username_is_auto_confirmed(username: str) -> None:
    """A valid username (any case) is confirmed at once, and the event comes back otherwise unchanged."""
    answer = sign_up(username)
    assert answer["response"] == {"autoConfirmUser": True, "autoVerifyEmail": False, "autoVerifyPhone": False}
    assert answer["userName"] == username


def test_email_is_marked_verified_when_given() -> None:
    """With an e-mail address, auto-confirmation also marks it verified (no code is sent)."""
    answer = sign_up("carol", email="carol@example.com")
    assert answer["response"]["autoConfirmUser"] is True
    assert answer["response"]["autoVerifyEmail"] is True


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "has space", "emoji😀", "semi;colon", "slash/", "new\nline", "abc\n", "\u212aelvin", ""],
)
def test_invalid_username_is_rejected(username: str) -> None:
    """Cognito turns the raised error into UserLambdaValidationException with this message."""
    with pytest.raises(presignup.InvalidUsername, match="3 to 32 characters"):
        sign_up(username)


def test_invalid_username_is_rejected_for_admin_created_users_too() -> None:
    """The rule holds however the account is created."""
    with pytest.raises(presignup.InvalidUsername):
        sign_up("no good", source="PreSignUp_AdminCreateUser")


@pytest.mark.parametrize("setting", ["false", "FALSE", " false "])
def test_auto_confirm_can_be_turned_off(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTO_CONFIRM=false leaves confirmation to Cognito's e-mail verification."""
    monkeypatch.setenv(config.AUTO_CONFIRM, setting)
    answer = sign_up("dave", email="dave@example.com")
    assert answer["response"]["autoConfirmUser"] is False
    assert answer["response"]["autoVerifyEmail"] is False


def test_invalid_username_is_rejected_even_without_auto_confirm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turning auto-confirmation off does not turn the username rule off."""
    monkeypatch.setenv(config.AUTO_CONFIRM, "false")
    with pytest.raises(presignup.InvalidUsername):
        sign_up("x")
