"""Every error this package raises on purpose, and the protocol error code each one becomes.

    ChatError                      base; carries the protocol ``code`` and a human-readable message
    ├── RejectedFrame              the client sent something the protocol refuses (connection stays open)
    │   ├── InvalidJson            ``invalid_json``: the frame is not JSON
    │   ├── UnknownAction          ``unknown_action``: JSON without a known ``action``
    │   ├── InvalidMessage         ``invalid_message``: a field missing or of the wrong type or form
    │   ├── TextTooLong            ``text_too_long``: ``text`` over the limit after trimming
    │   ├── UnknownUser            ``unknown_user``: no account with that username
    │   └── RateLimited            ``rate_limited``: the user sent too much too fast
    └── DependencyError            ``internal_error``: DynamoDB, Cognito or the management API failed

Anything else that escapes a handler is a bug; the route wrapper logs it with its stack and answers
``internal_error``. SDK errors are wrapped with ``raise DependencyError(...) from exc``.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base class; ``code`` is the protocol's error code."""

    code = "internal_error"

    def __init__(self, message: str, *, client_msg_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.client_msg_id = client_msg_id


class RejectedFrame(ChatError):
    """The client's frame breaks the protocol; it gets an error frame and stays connected."""


class InvalidJson(RejectedFrame):
    code = "invalid_json"


class UnknownAction(RejectedFrame):
    code = "unknown_action"


class InvalidMessage(RejectedFrame):
    code = "invalid_message"


class TextTooLong(RejectedFrame):
    code = "text_too_long"


class UnknownUser(RejectedFrame):
    code = "unknown_user"


class RateLimited(RejectedFrame):
    code = "rate_limited"


class DependencyError(ChatError):
    """An AWS dependency failed after its retries; the client sees ``internal_error``."""

    code = "internal_error"
