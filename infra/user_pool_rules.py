"""The Cognito user pool's rules as plain data, shared by the CDK stack and the local stack.

The username rule is not here: Cognito cannot express it, so the pre-sign-up trigger enforces it,
from ``functions/chat/usernames.py``.
"""

from __future__ import annotations

PASSWORD_MIN_LENGTH = 8
PASSWORD_REQUIRE = {"lowercase": True, "uppercase": False, "digits": True, "symbols": False}
ACCESS_TOKEN_MINUTES = 60
ID_TOKEN_MINUTES = 60
REFRESH_TOKEN_DAYS = 30
AUTH_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
# CDK context key: set to "false" to require e-mail verification instead of auto-confirming.
AUTO_CONFIRM_CONTEXT_KEY = "autoConfirmSignUp"
