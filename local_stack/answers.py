"""How API Gateway reads what a Lambda answered, as pure functions of the answer.

- REQUEST authorizer: ``raise Exception("Unauthorized")`` is a 401; a policy that does not allow
  ``execute-api:Invoke`` on the ``methodArn`` (an explicit Deny, or no matching Allow) is a 403;
  any other exception, or an answer that is not a well-formed policy, is a 500. An allowed
  answer's ``context`` may hold only strings, numbers and booleans.
- ``$connect``: a 2xx ``statusCode`` accepts the handshake; any other status refuses it with that
  status; an exception or an answer without a status is a 500.
- message routes: an exception is an integration failure, which API Gateway reports to the client
  in a frame of its own (see ``integration_error_frame``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNAUTHORIZED_MESSAGE = "Unauthorized"
INVOKE_ACTION = "execute-api:Invoke"
# What API Gateway answers a refused handshake with (status -> body message).
HANDSHAKE_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 500: "Internal server error"}


@dataclass(frozen=True)
class AuthorizerVerdict:
    """The handshake's fate after the authorizer: 200 (go on to $connect), 401, 403 or 500."""

    status: int
    principal_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""


def authorizer_verdict(answer: Any, error: BaseException | None, method_arn: str) -> AuthorizerVerdict:
    if error is not None:
        if type(error) is Exception and str(error) == UNAUTHORIZED_MESSAGE:
            return AuthorizerVerdict(401, why="authorizer raised Unauthorized")
        return AuthorizerVerdict(500, why=f"authorizer failed: {type(error).__name__}: {error}")
    if not isinstance(answer, Mapping):
        return AuthorizerVerdict(500, why="authorizer answer is not an object")
    principal_id = answer.get("principalId")
    context = answer.get("context") or {}
    if not isinstance(principal_id, str) or not principal_id:
        return AuthorizerVerdict(500, why="authorizer answer has no principalId")
    if not _valid_context(context):
        return AuthorizerVerdict(500, why="authorizer context must map names to strings, numbers or booleans")
    allowed = policy_allows(answer.get("policyDocument"), method_arn)
    if allowed is None:
        return AuthorizerVerdict(500, why="authorizer answer has no valid policyDocument")
    if not allowed:
        return AuthorizerVerdict(403, principal_id, why="policy does not allow this connection")
    return AuthorizerVerdict(200, principal_id, dict(context))


def policy_allows(document: Any, resource: str) -> bool | None:
    """Whether an IAM policy allows invoking ``resource``; None when it is not a policy."""
    if not isinstance(document, Mapping):
        return None
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, Mapping) for s in statements):
        return None
    matching = [
        s
        for s in statements
        if _matches(s.get("Action"), INVOKE_ACTION) and _matches(s.get("Resource"), resource)
    ]
    effects = {s.get("Effect") for s in matching}
    # An explicit Deny wins over any Allow, as in IAM.
    return "Allow" in effects and "Deny" not in effects


def connect_status(answer: Any, error: BaseException | None) -> int:
    """The HTTP status of the handshake after ``$connect`` answered."""
    if error is not None or not isinstance(answer, Mapping):
        return 500
    status = answer.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return 500
    return status


def handshake_body(status: int) -> bytes:
    message = HANDSHAKE_MESSAGES.get(status, HANDSHAKE_MESSAGES[500] if status >= 500 else "Forbidden")
    return json.dumps({"message": message}).encode()


def integration_error_frame(message: str, connection_id: str, request_id: str) -> str:
    """The frame API Gateway sends a client when a route's integration failed or timed out."""
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})


def _valid_context(context: Any) -> bool:
    return isinstance(context, Mapping) and all(
        isinstance(key, str) and isinstance(value, str | int | float | bool) for key, value in context.items()
    )


def _matches(patterns: Any, value: str) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False
    return any(isinstance(p, str) and _wildcard(p).fullmatch(value) for p in patterns)


def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one."""
    return re.compile(
        ".*".join(".".join(re.escape(part) for part in piece.split("?")) for piece in pattern.split("*"))
    )
