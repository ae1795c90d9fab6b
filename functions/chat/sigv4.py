"""AWS Signature Version 4 for the management API's POSTs, as botocore's ``SigV4Auth`` signs them
(checked byte for byte against it in tests/functions/test_notifier_signing.py).

Why our own: a fan-out signs thousands of POSTs of one body to one host, paths that differ only in
their last segment. ``SigV4Auth`` builds request objects and computes six HMACs a post; here the
body's hash is computed once per fan-out, the signing key once per day, and everything else but
the path and the signature once per second, leaving one SHA-256 and one HMAC (from a keyed state
copied, not keyed again) per post.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from urllib.parse import quote

from botocore.credentials import ReadOnlyCredentials

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"

Headers = list[tuple[bytes, bytes]]


def quote_segment(segment: str) -> str:
    """A path segment percent-encoded as botocore encodes a connection id (nothing left safe).
    API Gateway's ids are letters and digits ending in '=': those skip ``quote``'s slow path."""
    if segment[-1:] == "=" and segment.isascii() and segment[:-1].isalnum():
        return segment[:-1] + "%3D"
    return quote(segment, safe="")


class Signer:
    """Signs POSTs of one body (``data``) to ``netloc`` at paths ``prefix`` + a percent-encoded
    segment (``quote_segment``), with one set of credentials, in one region."""

    def __init__(
        self, credentials: ReadOnlyCredentials, region: str, data: bytes, *, netloc: str, prefix: str
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.netloc = netloc
        self.payload_hash = hashlib.sha256(data).hexdigest()
        token = credentials.token
        self._signed_headers = "host;x-amz-date;x-amz-security-token" if token else "host;x-amz-date"
        self._canonical_prefix = "POST\n" + _canonical_path(prefix)
        self._second = -1
        self._day = ""
        self._day_mac = hmac.new(b"", digestmod=hashlib.sha256)
        self._per_second: tuple[str, str, str, Headers] = ("", "", "", [])

    def headers(self, segment: str, now: float | None = None) -> Headers:
        """X-Amz-Date, X-Amz-Security-Token (with temporary credentials) and Authorization for a
        POST to ``prefix + segment``; ``segment`` percent-encoded, so it holds no '/'."""
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._new_second(second)
        canonical_tail, string_head, authorization_head, fixed = self._per_second
        # Encoding an encoded segment once more only turns each '%' into '%25'.
        canonical = f"{self._canonical_prefix}{segment.replace('%', '%25')}{canonical_tail}"
        mac = self._day_mac.copy()
        mac.update((string_head + hashlib.sha256(canonical.encode()).hexdigest()).encode())
        return [*fixed, (b"Authorization", (authorization_head + mac.hexdigest()).encode())]

    def _new_second(self, second: int) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        if stamp[:8] != self._day:
            self._day = stamp[:8]
            key = signing_key(self.credentials.secret_key or "", self._day, self.region)
            self._day_mac = hmac.new(key, digestmod=hashlib.sha256)
        token = self.credentials.token
        scope = f"{self._day}/{self.region}/{SERVICE}/aws4_request"
        canonical_headers = f"host:{self.netloc}\nx-amz-date:{stamp}\n" + (
            f"x-amz-security-token:{token}\n" if token else ""
        )
        fixed = [(b"X-Amz-Date", stamp.encode())]
        if token:
            fixed.append((b"X-Amz-Security-Token", token.encode()))
        self._per_second = (
            f"\n\n{canonical_headers}\n{self._signed_headers}\n{self.payload_hash}",
            f"{ALGORITHM}\n{stamp}\n{scope}\n",
            f"{ALGORITHM} Credential={self.credentials.access_key}/{scope}, "
            f"SignedHeaders={self._signed_headers}, Signature=",
            fixed,
        )
        self._second = second


@functools.lru_cache(maxsize=64)
def _canonical_path(path: str) -> str:
    """The canonical URI: the path encoded once more (botocore: ``quote(path, safe="/~")``)."""
    return quote(path, safe="/~")


# A process signs a day's frames with one key: derived once, not once per frame (a pong, an error).
@functools.lru_cache(maxsize=8)
def signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
