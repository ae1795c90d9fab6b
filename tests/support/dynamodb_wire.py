"""DynamoDB's JSON protocol spoken by hand, for tests that compare a server's answers as sent (an
SDK would parse them first). moto checks no signature, so the Authorization header only names the
service and region."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def raw_call(
    url: str, operation: str, body: dict[str, Any], *, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One operation over HTTP: the status, the headers (names lower-cased) and the body as sent;
    an error answer is returned the same way, not raised."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": _AUTHORIZATION,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, _lowered(reply.headers.items()), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, _lowered(error.headers.items()), error.read()


def _lowered(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}
