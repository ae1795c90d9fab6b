"""AWS Signature Version 4 for the management API's POSTs, as botocore's ``SigV4Auth`` signs them
(checked byte for byte against it in tests/functions/test_notifier_signing.py).

Why our own: a fan-out signs thousands of POSTs of one body. ``SigV4Auth`` builds request objects
and computes six HMACs a post; here the body's hash is computed once per fan-out and the signing
key once per day, leaving one SHA-256 and one HMAC per post.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from botocore.credentials import ReadOnlyCredentials

SERVICE = "execute-api"


class Signer:
    """Signs POSTs of one body (``data``) with one set of credentials, in one region."""

    def __init__(self, credentials: ReadOnlyCredentials, region: str, data: bytes) -> None:
        self.credentials = credentials
        self.region = region
        self.payload_hash = hashlib.sha256(data).hexdigest()
        self._second = -1
        self._stamp = ""
        self._day = ""
        self._key = b""

    def headers(self, path: str, netloc: str, now: float | None = None) -> list[tuple[str, str]]:
        """X-Amz-Date, X-Amz-Security-Token (with temporary credentials) and Authorization."""
        stamp = self._timestamp(time.time() if now is None else now)
        token = self.credentials.token
        signed = "host;x-amz-date;x-amz-security-token" if token else "host;x-amz-date"
        canonical_headers = f"host:{netloc}\nx-amz-date:{stamp}\n" + (
            f"x-amz-security-token:{token}\n" if token else ""
        )
        canonical_request = "\n".join(
            ["POST", quote(path, safe="/~"), "", canonical_headers, signed, self.payload_hash]
        )
        scope = f"{self._day}/{self.region}/{SERVICE}/aws4_request"
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        signature = hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers = [("X-Amz-Date", stamp)]
        if token:
            headers.append(("X-Amz-Security-Token", token))
        headers.append(
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={self.credentials.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}",
            )
        )
        return headers

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            if self._stamp[:8] != self._day:
                self._day = self._stamp[:8]
                self._key = signing_key(self.credentials.secret_key or "", self._day, self.region)
        return self._stamp


def signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
