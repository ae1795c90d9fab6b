"""Cognito pre-sign-up trigger: enforce the username rule and auto-confirm new users.

Cognito compares usernames case-insensitively (the pool is configured so), so nothing is rewritten
here; a username that is not 3 to 32 of ``a-z 0-9 _ . -`` once lower-cased is rejected by raising,
which Cognito reports to the client as ``UserLambdaValidationException`` with this message.
New users are confirmed at once (and their e-mail marked verified when they gave one) so they can
chat straight away, unless the stack sets ``AUTO_CONFIRM=false`` to require e-mail verification.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.cognito_user_pool_event import PreSignUpTriggerEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat.config import AUTO_CONFIRM
from chat.observability import logger
from chat.usernames import normalize_username


class InvalidUsername(Exception):
    """The requested username breaks the rule; the message is shown to the person signing up."""


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=PreSignUpTriggerEvent)
def handler(event: PreSignUpTriggerEvent, context: LambdaContext) -> dict[str, Any]:
    if normalize_username(event.user_name) is None:
        logger.info("sign-up rejected: invalid username", extra={"trigger": event.trigger_source})
        raise InvalidUsername("Username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'.")
    if auto_confirm_enabled():
        event.response.auto_confirm_user = True
        event.response.auto_verify_email = bool(event.request.user_attributes.get("email"))
    answer: dict[str, Any] = event.raw_event
    return answer


def auto_confirm_enabled() -> bool:
    """Auto-confirmation is on unless the stack explicitly turns it off."""
    return os.environ.get(AUTO_CONFIRM, "").strip().lower() != "false"
