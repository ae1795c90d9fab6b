"""Throwaway users: signed up and signed in through Cognito's public API, deleted at the end.

Sign-up and sign-in are unsigned calls any client makes (``SignUp``, ``InitiateAuth`` with
``USER_PASSWORD_AUTH``); the stack's pre-sign-up trigger confirms the user. Deleting is best
effort: first ``DeleteUser`` with the user's own access token (no AWS credentials needed), then
``AdminDeleteUser`` with whatever credentials the caller's environment holds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conformance.target import Target

PREFIX = "verify"
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=20)


class SignUpFailed(Exception):
    """A throwaway user could not be signed up or signed in."""


@dataclass(frozen=True)
class Account:
    """A signed-in throwaway user and its tokens."""

    username: str
    access_token: str
    id_token: str


def new_run_id() -> str:
    """Eight hex digits: unique per run, short enough for ``verify-<run>-<letter>`` usernames."""
    return secrets.token_hex(4)


def password() -> str:
    """A fresh password that meets any policy the pool may have (length, cases, digits, symbols)."""
    return f"Vf-{secrets.token_urlsafe(12)}-7a!"


class Accounts:
    """Signs users up and in against one stack's user pool, and remembers them for deletion."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._public = boto3.client(
            "cognito-idp",
            endpoint_url=target.cognito_endpoint,
            region_name=target.region,
            config=_CLIENT_CONFIG.merge(Config(signature_version=UNSIGNED)),
        )
        self.created: list[Account] = []

    def sign_up(self, username: str) -> Account:
        """Sign up ``username`` (it must be auto-confirmed) and sign it in."""
        secret = password()
        try:
            answer = self._public.sign_up(
                ClientId=self._target.user_pool_client_id, Username=username, Password=secret
            )
        except (ClientError, BotoCoreError) as exc:
            raise SignUpFailed(f"SignUp of {username} failed: {_reason(exc)}") from None
        if not answer.get("UserConfirmed"):
            # Created, so it is ours to delete, even though it cannot sign in.
            self.created.append(Account(username, "", ""))
            raise SignUpFailed(
                f"{username} was signed up but not confirmed: the stack does not auto-confirm sign-ups"
            )
        account = self.sign_in(username, secret)
        self.created.append(account)
        return account

    def refusal_of(self, username: str) -> str | None:
        """Why a sign-up of ``username`` was refused, or None if it was accepted (then it is deleted
        with the others at the end)."""
        try:
            self._public.sign_up(
                ClientId=self._target.user_pool_client_id, Username=username, Password=password()
            )
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code"))
        self.created.append(Account(username, "", ""))
        return None

    def sign_in(self, username: str, secret: str) -> Account:
        try:
            result = self._public.initiate_auth(
                ClientId=self._target.user_pool_client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": secret},
            )["AuthenticationResult"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            raise SignUpFailed(f"sign-in of {username} failed: {_reason(exc)}") from None
        return Account(username, result["AccessToken"], result["IdToken"])

    def delete_created(self) -> list[str]:
        """Delete every user this run created; one line per outcome, for the report."""
        if not self.created:
            return []
        deleted, kept = [], []
        admin: Any = None
        admin_problem = ""
        self_service = True  # until the stack refuses DeleteUser once
        for account in self.created:
            if self_service and account.access_token:
                if self._delete_self(account):
                    deleted.append(account.username)
                    continue
                self_service = False
            if admin is None and not admin_problem:
                admin, admin_problem = self._admin_client()
            problem = admin_problem or self._admin_delete(admin, account.username)
            if problem:
                kept.append(f"{account.username} ({problem})")
            else:
                deleted.append(account.username)
        lines = [f"cleanup: deleted {', '.join(deleted)}"] if deleted else []
        if kept:
            lines.append(f"cleanup: NOT deleted, remove by hand: {'; '.join(kept)}")
        return lines

    def _delete_self(self, account: Account) -> bool:
        try:
            self._public.delete_user(AccessToken=account.access_token)
        except (ClientError, BotoCoreError):
            return False
        return True

    def _admin_client(self) -> tuple[Any, str]:
        session = boto3.session.Session()
        if session.get_credentials() is None:
            return None, "DeleteUser refused and no AWS credentials for AdminDeleteUser"
        client = session.client(
            "cognito-idp",
            endpoint_url=self._target.cognito_endpoint,
            region_name=self._target.region,
            config=_CLIENT_CONFIG,
        )
        return client, ""

    def _admin_delete(self, admin: Any, username: str) -> str:
        try:
            admin.admin_delete_user(UserPoolId=self._target.user_pool_id, Username=username)
        except (ClientError, BotoCoreError) as exc:
            return f"AdminDeleteUser: {_reason(exc)}"
        return ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"
