"""Which usernames have an account: the Cognito user pool is the one source of truth."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from chat import aws_clients
from chat.boto_config import ONE_CALL

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient


class UserDirectory:
    """Answers "does this user exist?", remembering every yes (accounts are not deleted in chat)."""

    def __init__(self, user_pool_id: str, client: CognitoIdentityProviderClient | None = None) -> None:
        self.user_pool_id = user_pool_id
        self._client = client
        self._known: set[str] = set()
        self._lock = threading.Lock()

    @property
    def client(self) -> CognitoIdentityProviderClient:
        if self._client is None:
            self._client = aws_clients.client("cognito-idp", config=ONE_CALL)
        return self._client

    def remember(self, username: str) -> None:
        """A user who holds a valid token certainly exists."""
        with self._lock:
            self._known.add(username)

    def exists(self, username: str) -> bool:
        with self._lock:
            if username in self._known:
                return True
        found = aws_clients.unless_error(
            "UserNotFoundException",
            "look the user up",
            lambda: self.client.admin_get_user(UserPoolId=self.user_pool_id, Username=username),
        )
        if found is None:
            return False
        self.remember(username)
        return True
