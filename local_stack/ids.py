"""Identifiers in the forms API Gateway uses, so clients and logs see nothing unusual locally."""

from __future__ import annotations

import base64
import secrets
import string

_API_ID_ALPHABET = string.ascii_lowercase + string.digits


def connection_id() -> str:
    """A connection id like AWS's ``L0SM9cOFvHcCIhw=``: 11 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode("ascii")


def request_id() -> str:
    """Request, extended request and message ids have the same 16-character form."""
    return connection_id()


def api_id() -> str:
    """An API id like ``abcdef1234``: ten lower-case letters and digits."""
    return "".join(secrets.choice(_API_ID_ALPHABET) for _ in range(10))


def trace_id() -> str:
    """An X-Ray trace header value, as API Gateway adds to the requests it forwards."""
    return f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
