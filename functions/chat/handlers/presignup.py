"""Cognito pre-sign-up trigger: enforce the username rule and auto-confirm new users.

Cognito compares usernames case-insensitively (the pool is configured so), so nothing is rewritten
here; a username that is not 3 to 32 of ``a-z 0-9 _ . -`` once lower-cased is rejected by raising,
which Cognito reports to the client as ``UserLambdaValidationException`` with this message.
New users are confirmed at once (and their e-mail marked verified when they gave one) so they can
chat straight away, unless the stack sets ``AUTO_CONFIRM=false`` to require e-mail verification.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from chat.config import AUTO_CONFIRM
from chat.observability import logger
from chat.usernames import normalize_username

if TYPE_CHECKING:
    # Types only: importing Powertools' typing module at run time loads all of Powertools' utilities.
    from aws_lambda_powertools.utilities.typing import LambdaContext


class InvalidUsername(Exception):
    """The requested username breaks the rule; the message is shown to the person signing up."""


# The event is read as the plain dict Cognito sends (userName, triggerSource, request.userAttributes,
# response): Powertools' PreSignUpTriggerEvent would load all of its event classes for four fields.
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if normalize_username(event.get("userName")) is None:
        logger.info("sign-up rejected: invalid username", extra={"trigger": event.get("triggerSource")})
        raise InvalidUsername("Username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'.")
    if auto_confirm_enabled():
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        response = event.setdefault("response", {})
        response["autoConfirmUser"] = True
        response["autoVerifyEmail"] = bool(attributes.get("email"))
    return event


def auto_confirm_enabled() -> bool:
    """Auto-confirmation is on unless the stack explicitly turns it off."""
    return os.environ.get(AUTO_CONFIRM, "").strip().lower() != "false"
