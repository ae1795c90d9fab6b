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
from chat.sigv4 import Signer, quote_segment

NETLOC = "abcdef1234.execute-api.us-east-1.amazonaws.com"
FRAME = '{"type":"message","text":"héllo wörld"}'.encode()
NOW = datetime.datetime(2026, 11, 27, 1, 2, 3, tzinfo=datetime.UTC)
PREFIX = "/prod/@connections/"


def botocore_headers(
    credentials: ReadOnlyCredentials, path: str, now: datetime.datetime = NOW
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=f"https://{NETLOC}{path}", data=FRAME, headers={"Host": NETLOC})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return {name: value for name, value in request.headers.items() if name != "Host"}


@pytest.mark.parametrize("token", ["session-token", None])
@pytest.mark.parametrize("connection_id", ["Qy2xUcYtIAMCKqg=", "a/b+c~d e", "Qy2x%3D=", "٣٤=", "="])
def test_signature_matches_botocore(token: str | None, connection_id: str) -> None:
    """Same date, credential scope, signed headers and signature, with and without a session token."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    path = f"{PREFIX}{quote(connection_id, safe='')}"
    signer = Signer(credentials, "us-east-1", FRAME, netloc=NETLOC, prefix=PREFIX)
    ours = signer.headers(quote_segment(connection_id), now=NOW.timestamp())
    assert {name.decode(): value.decode() for name, value in ours} == botocore_headers(credentials, path)


def test_the_signing_key_follows_the_date() -> None:
    """A fan-out that runs past midnight signs with the new day's key."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
    signer = Signer(credentials, "us-east-1", FRAME, netloc=NETLOC, prefix=PREFIX)
    before = dict(signer.headers("x", now=NOW.timestamp()))
    after = dict(signer.headers("x", now=NOW.timestamp() + 86400))
    assert b"/20261127/" in before[b"Authorization"] and b"/20261128/" in after[b"Authorization"]


def test_every_second_is_signed_with_its_own_date() -> None:
    """Within one second the per-second parts are reused; the next second's post is signed anew."""
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token")
    signer = Signer(credentials, "us-east-1", FRAME, netloc=NETLOC, prefix=PREFIX)
    for offset in (0.0, 0.5, 1.0):
        now = NOW + datetime.timedelta(seconds=offset)
        ours = signer.headers("Qy2xUcYtIAMCKqg%3D", now=now.timestamp())
        theirs = botocore_headers(credentials, f"{PREFIX}Qy2xUcYtIAMCKqg%3D", now)
        assert {name.decode(): value.decode() for name, value in ours} == theirs


@pytest.mark.parametrize("segment", ["Qy2xUcYtIAMCKqg=", "abc", "a=b=", "é=", "٣٤=", "=", "a b/c+"])
def test_a_segment_is_encoded_as_quote_encodes_it(segment: str) -> None:
    """The shortcut for API Gateway's ids gives what ``quote(segment, safe="")`` gives, for any id."""
    assert quote_segment(segment) == quote(segment, safe="")
