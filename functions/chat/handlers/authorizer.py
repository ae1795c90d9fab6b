"""The $connect authorizer: a Lambda REQUEST authorizer that admits only valid Cognito access tokens.

The token rides in the query string (``?token=``: browsers cannot set headers on a WebSocket).
Answers, and what API Gateway makes of them:

- valid access token: an Allow policy for ``methodArn`` with principal and context ``username``
  (lower-cased), which the route handlers read from ``requestContext.authorizer``;
- no token, an empty one, or an event without ``methodArn``: ``raise Exception("Unauthorized")``,
  which API Gateway answers with 401 (as it does itself when the query parameter is absent);
- any other token (malformed, expired, forged, wrong pool or client, ID token) and any failure
  while verifying it: a Deny policy, answered with 403.

Only the reason for a refusal is logged, never the token. No exception but "Unauthorized" leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat import token_verifier
from chat.observability import logger

if TYPE_CHECKING:
    # Types only: importing Powertools' typing module at run time loads all of Powertools' utilities.
    from aws_lambda_powertools.utilities.typing import LambdaContext

DENIED_PRINCIPAL = "anonymous"


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    query = event.get("queryStringParameters")
    token = query.get("token") if isinstance(query, dict) else None
    method_arn = event.get("methodArn")
    if not isinstance(token, str) or not token or not isinstance(method_arn, str):
        logger.info("refused: no token")
        # The exact text API Gateway (and the local stack) turn into a 401.
        raise Exception("Unauthorized")
    try:
        identity = token_verifier.default_verifier().verify(token)
    except token_verifier.InvalidToken as exc:
        logger.info("refused: invalid token", extra={"reason": str(exc)})
        return policy(DENIED_PRINCIPAL, "Deny", method_arn)
    except Exception:  # noqa: BLE001 - nothing but "Unauthorized" may leave an authorizer
        # Misconfiguration or unreachable keys: refuse, with the stack for whoever looks into it.
        logger.exception("refused: token could not be verified")
        return policy(DENIED_PRINCIPAL, "Deny", method_arn)
    logger.info("allowed", extra={"username": identity.username})
    return policy(identity.username, "Allow", method_arn, context={"username": identity.username})


def policy(
    principal_id: str, effect: str, method_arn: str, context: dict[str, str] | None = None
) -> dict[str, Any]:
    """The IAM policy answer of a WebSocket REQUEST authorizer, for exactly the route asked about."""
    # Written out rather than built with Powertools' APIGatewayAuthorizerResponseWebSocket: that
    # helper re-assembles the ARN from parts and drops its partition (aws-cn, aws-us-gov), while
    # methodArn is already the one resource this answer is about.
    answer: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context:
        answer["context"] = context
    return answer
