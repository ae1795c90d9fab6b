"""Stand-in handlers for driving the gateway into answers the real handlers never give.

The authorizer's answer is chosen by the token; ``$connect`` refuses when the query says so;
``$default`` raises on the body ``boom``, and records the bodies ``note:...`` in the order their
calls started (``STARTED``); ``note:slow`` then takes a second.
"""

from __future__ import annotations

import time
from typing import Any

STARTED: list[str] = []


def authorize(event: dict[str, Any], context: Any) -> Any:
    token = event["queryStringParameters"]["token"]
    arn = event["methodArn"]
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "crash":
        raise RuntimeError("authorizer bug")
    if token == "malformed":
        return {"principalId": "someone"}
    if token == "nested-context":
        return _policy("Allow", arn, context={"user": {"name": "x"}})
    if token == "deny":
        return _policy("Deny", arn)
    if token == "other-resource":
        return _policy("Allow", arn.replace("$connect", "sendmessage"))
    if token == "wildcard":
        return _policy("Allow", arn.rsplit("/", 2)[0] + "/*")
    return _policy(
        "Allow", arn, context={"username": token, "remaining": context.get_remaining_time_in_millis()}
    )


def connect(event: dict[str, Any], context: Any) -> Any:
    query = event.get("queryStringParameters") or {}
    if query.get("connect") == "refuse":
        return {"statusCode": 403}
    if query.get("connect") == "crash":
        raise RuntimeError("connect bug")
    if query.get("connect") == "nothing":
        return None
    return {"statusCode": 200}


def default(event: dict[str, Any], context: Any) -> Any:
    body = event["body"]
    if body == "boom":
        raise RuntimeError("route bug")
    if body.startswith("note:"):
        STARTED.append(body)
        if body == "note:slow":
            time.sleep(1.0)
    return {"statusCode": 200}


def fine(event: dict[str, Any], context: Any) -> Any:
    return {"statusCode": 200}


def _policy(effect: str, resource: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": "someone",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context is not None:
        answer["context"] = context
    return answer
