"""The username rule of the protocol, in the runtime (the Lambda asset holds ``functions/`` only).

A username is 3 to 32 characters of ``a-z 0-9 _ . -``, compared case-insensitively and stored and
shown lower-case. The pre-sign-up trigger enforces it for the user pool (Cognito cannot express it).
"""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")


def normalize_username(raw: object) -> str | None:
    """The lower-cased username, or None when ``raw`` is not a string of the allowed form."""
    # ASCII first: str.lower() maps a few other characters onto ASCII letters (the Kelvin sign
    # U+212A becomes "k"), which would let a look-alike name pass as another user's.
    if not isinstance(raw, str) or not raw.isascii():
        return None
    username = raw.lower()
    # fullmatch, not match with "$": "$" also matches before a trailing newline.
    return username if USERNAME_RE.fullmatch(username) else None
