"""The notifier's own SigV4 signer (its fast path, see docs/benchmarks/fanout.md) signs exactly as
botocore's ``SigV4Auth`` does, so API Gateway accepts its posts."""

from __future__ import annotations

import datetime
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from chat.sigv4 import Signer

NETLOC = "abcdef1234.execute-api.us-east-1.amazonaws.com"
FRAME = '{"type":"message","text":"héllo wörld"}'.encode()
NOW = datetime.datetime(2026, 11, 27, 1, 2, 3, tzinfo=datetime.UTC)


def botocore_headers(credentials: ReadOnlyCredentials, path: str) -> dict[str, str]:
    request = AWSRequest(method="POST", url=f"https://{NETLOC}{path}", data=FRAME, headers={"Host": NETLOC})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return {name: value for name, value in request.headers.items() if name != "Host"}


@pytest.mark.parametrize("token", ["session-token", None])
@pytest.mark.parametrize("connection_id", ["Qy2xUcYtIAMCKqg=", "a/b+c~d e"])
def test_signature_matches_botocore(token: str | None, connection_id: str) -> None:
    """Same date, credential scope, signed headers and signature, with and without a session token."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    path = f"/prod/@connections/{quote(connection_id, safe='')}"
    ours = dict(Signer(credentials, "us-east-1", FRAME).headers(path, NETLOC, now=NOW.timestamp()))
    assert ours == botocore_headers(credentials, path)


def test_the_signing_key_follows_the_date() -> None:
    """A fan-out that runs past midnight signs with the new day's key."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
    signer = Signer(credentials, "us-east-1", FRAME)
    before = dict(signer.headers("/prod/@connections/x", NETLOC, now=NOW.timestamp()))
    after = dict(signer.headers("/prod/@connections/x", NETLOC, now=NOW.timestamp() + 86400))
    assert "/20261127/" in before["Authorization"] and "/20261128/" in after["Authorization"]
