"""Signing in to the chat's Cognito user pool: sign up on first use, sign in, refresh the token.

Only the first sign-in signs up a new username. Later, when neither the refresh token nor the
password is accepted any more (the account, or the whole user pool, is gone: a local stack started
afresh), ``access_token`` raises ``AccountGone`` instead of quietly creating a new account; the
caller asks the user, then ``sign_up_again``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.cli.config import ChatConfig

# Refresh this long before the access token expires, so a reconnect never presents a stale one.
REFRESH_MARGIN_SECONDS = 5 * 60
# Cognito's answers to USER_PASSWORD_AUTH for an unknown user: UserNotFoundException, or (the
# deployed and the local pool) NotAuthorizedException, the same as for a wrong password.
MAYBE_UNKNOWN_USER = ("UserNotFoundException", "NotAuthorizedException")
# A refresh or sign-in answered so, after signing in once, means the account is gone: its pool or
# app client no longer exists (ResourceNotFoundException), or the pool does not know the user.
ACCOUNT_GONE_CODES = ("ResourceNotFoundException", *MAYBE_UNKNOWN_USER)


class AuthError(Exception):
    """Cognito refused: ``code`` is its error name (NotAuthorizedException, InvalidPasswordException…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AccountGone(AuthError):
    """The signed-in account can no longer sign in; ``reset`` when its user pool itself is gone."""

    def __init__(self, username: str, *, reset: bool) -> None:
        if reset:
            words = f"the chat server was reset: the account {username} no longer exists there"
        else:
            words = f"{username} can no longer sign in: the account was removed or its password changed"
        super().__init__("AccountGone", words)
        self.username = username
        self.reset = reset

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: float


def cognito_client(config: ChatConfig) -> Any:
    """A cognito-idp client for the chat's endpoint; unsigned, as sign-up and sign-in need no AWS keys."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client(
        "cognito-idp",
        region_name=config.region,
        endpoint_url=config.cognito_endpoint,
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 3, "mode": "standard"}),
    )


class CognitoAuth:
    """Access tokens for one user, signing up on first use (the protocol's self-service sign-up)."""

    def __init__(
        self,
        config: ChatConfig,
        username: str,
        password: str,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.username = username
        self._password = password
        self._client = client
        self._clock = clock
        self._tokens: Tokens | None = None
        self._pool_changed = False

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = cognito_client(self.config)
        return self._client

    def access_token(self) -> str:
        """A token good for at least a few more minutes: the current one, a refreshed one or a new one.

        Raises ``AccountGone`` when an account that signed in before cannot any more.
        """
        if self._tokens and self._clock() < self._tokens.expires_at - REFRESH_MARGIN_SECONDS:
            return self._tokens.access_token
        if self._tokens is None:
            return self.sign_in()  # the first time: a new username is registered
        if self._tokens.refresh_token:
            try:
                return self.refresh()
            except AuthError as exc:
                if exc.code not in ACCOUNT_GONE_CODES:
                    raise  # the network, or Cognito busy: worth a retry
                # the refresh token expired or was revoked: the password may still work
        try:
            return self._password_auth()
        except AuthError as exc:
            if exc.code in ACCOUNT_GONE_CODES:
                reset = self._pool_changed or exc.code != "NotAuthorizedException"
                raise AccountGone(self.username, reset=reset) from exc
            raise

    def use_config(self, config: ChatConfig) -> None:
        """The server's configuration changed (a restarted stack): sign in against it from now on."""
        if (config.user_pool_id, config.user_pool_client_id) != (
            self.config.user_pool_id,
            self.config.user_pool_client_id,
        ):
            self._pool_changed = True
            self.invalidate()
        if config.cognito_endpoint != self.config.cognito_endpoint or config.region != self.config.region:
            self._client = None
        self.config = config

    def sign_up_again(self) -> str:
        """After ``AccountGone``: register the username anew with the same password, and sign in."""
        self._tokens = None
        self._pool_changed = False
        return self.sign_in()

    def invalidate(self) -> None:
        """Forget the access token (the server refused it); the next call refreshes it."""
        if self._tokens:
            self._tokens = Tokens("", self._tokens.refresh_token, expires_at=0)

    def sign_in(self) -> str:
        """Sign in with the password, signing up first when the username is new."""
        try:
            return self._password_auth()
        except AuthError as exc:
            if exc.code not in MAYBE_UNKNOWN_USER:
                raise
            # The pool does not say whether the name exists: signing it up tells.
            if not self._sign_up():
                raise AuthError(
                    exc.code, f"wrong password for {self.username!r}, or that name is taken by someone else"
                ) from exc
        return self._password_auth()

    def refresh(self) -> str:
        assert self._tokens and self._tokens.refresh_token
        result = self._initiate_auth("REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": self._tokens.refresh_token})
        return self._keep(result)

    def _password_auth(self) -> str:
        parameters = {"USERNAME": self.username, "PASSWORD": self._password}
        return self._keep(self._initiate_auth("USER_PASSWORD_AUTH", parameters))

    def _sign_up(self) -> bool:
        """Register the username; False when it is already taken (then the password was wrong)."""
        try:
            self._call(
                "sign_up",
                ClientId=self.config.user_pool_client_id,
                Username=self.username,
                Password=self._password,
            )
        except AuthError as exc:
            if exc.code == "UsernameExistsException":
                return False
            raise
        return True

    def _initiate_auth(self, flow: str, parameters: dict[str, str]) -> dict[str, Any]:
        response = self._call(
            "initiate_auth",
            AuthFlow=flow,
            AuthParameters=parameters,
            ClientId=self.config.user_pool_client_id,
        )
        if "AuthenticationResult" not in response:
            # A challenge (new password, MFA…) this client does not handle.
            raise AuthError(response.get("ChallengeName", "Challenge"), "sign in with another client first")
        return dict(response["AuthenticationResult"])

    def _keep(self, result: dict[str, Any]) -> str:
        # A refresh answers without a new refresh token: keep the one we have.
        refresh_token = result.get("RefreshToken") or (self._tokens.refresh_token if self._tokens else None)
        expires_at = self._clock() + int(result.get("ExpiresIn", 3600))
        self._tokens = Tokens(result["AccessToken"], refresh_token, expires_at)
        return self._tokens.access_token

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self.client, operation)(**kwargs))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AuthError(error.get("Code", "ClientError"), error.get("Message", str(exc))) from exc
        except BotoCoreError as exc:
            raise AuthError("ConnectionError", str(exc)) from exc
