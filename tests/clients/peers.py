"""A user on a plain WebSocket: what the simplest client of the protocol looks like."""

from __future__ import annotations

from clients.cli.auth import CognitoAuth
from clients.cli.config import ChatConfig
from clients.cli.session import url_with_token
from tests.support.chat_client import ChatClient

PASSWORD = "password123"  # meets the pool's policy: 8+ characters, lower-case letters and digits


class Peer(ChatClient):
    """A user signed in with the chat command's own Cognito client, on a plain WebSocket."""

    def __init__(self, config: ChatConfig, username: str) -> None:
        token = CognitoAuth(config, username, PASSWORD).access_token()
        super().__init__(username, url_with_token(config.websocket_url, token))
