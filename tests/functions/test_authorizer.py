"""The $connect authorizer, driven with real RS256 tokens from moto's Cognito over real HTTP.

Mapping under test: a valid access token gets an Allow policy with the lower-cased username;
no token gets ``Exception("Unauthorized")`` (401); every other token gets a Deny policy (403).
Every refusal is also checked for what reaches the logs: the reason, never the token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
import rsa
from chat import token_verifier
from chat.handlers import authorizer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from tests.functions.cognito_fixtures import (  # noqa: F401 - pytest finds fixtures by their name=
    Cognito,
    b64url,
    capture_logs,
    claims_of,
    cognito_fixture,
    minted_at_fixture,
    new_rsa_key,
    public_jwk,
    signed_with,
    verifier_env_fixture,
    with_claims,
    with_flipped_signature,
    with_header,
)
from tests.support.world import lambda_context

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/$connect"

pytestmark = pytest.mark.usefixtures("verifier_env")


def connect_event(token: str | None) -> dict[str, Any]:
    """A $connect REQUEST authorizer event as API Gateway sends it."""
    query = None if token is None else {"token": token}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "queryStringParameters": query,
        "headers": {"Host": "abcdef1234.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "conn-1="},
    }


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Any:
    return capture_logs(authorizer.logger, monkeypatch)


def authorize(token: str | None) -> dict[str, Any]:
    return authorizer.handler(connect_event(token), lambda_context())


def assert_denied(token: str, logs: Any) -> str:
    """Refused with a Deny policy for this route; returns what was logged."""
    answer = authorize(token)
    assert answer == {
        "principalId": "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": METHOD_ARN}],
        },
    }
    logged = logs.getvalue()
    assert "refused" in logged
    assert token not in logged
    return str(logged)


def test_valid_access_token_is_allowed_with_lower_cased_username(cognito: Cognito, logs: Any) -> None:
    """A real access token of user "Alice" connects as "alice", for exactly this route."""
    token = cognito.access_token("Alice")
    assert claims_of(token)["username"] == "Alice"
    assert authorize(token) == {
        "principalId": "alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}],
        },
        "context": {"username": "alice"},
    }
    assert token not in logs.getvalue()


def test_explicit_issuer_setting_is_honoured(cognito: Cognito, monkeypatch: pytest.MonkeyPatch) -> None:
    """TOKEN_ISSUER, when set, is the issuer a token must name (here: another pool's, so refused)."""
    monkeypatch.setenv("TOKEN_ISSUER", cognito.other_pool.issuer)
    token_verifier.default_verifier.cache_clear()
    assert authorize(cognito.access_token("bob"))["policyDocument"]["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize("query", [None, {}, {"token": ""}, {"other": "x"}, "token=not-a-map"])
def test_missing_or_empty_token_is_unauthorized(query: Any, logs: Any) -> None:
    """No token at all is a 401: the handler raises exactly Exception('Unauthorized')."""
    event = connect_event(None) | {"queryStringParameters": query}
    with pytest.raises(Exception, match=r"^Unauthorized$") as raised:
        authorizer.handler(event, lambda_context())
    assert type(raised.value) is Exception
    assert "refused: no token" in logs.getvalue()


def test_event_without_method_arn_is_unauthorized(cognito: Cognito, logs: Any) -> None:
    """Without methodArn no policy can be written, so the answer is the 401, not a crash."""
    event = connect_event(cognito.access_token()) | {"methodArn": None}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(event, lambda_context())


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "..", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30."])
def test_garbage_is_denied(garbage: str, logs: Any) -> None:
    """Strings that are not JWTs are refused with a Deny policy."""
    assert_denied(garbage, logs)


def test_expired_token_is_denied(cognito: Cognito, minted_at: Callable[[float], None], logs: Any) -> None:
    """A real token whose hour ran out a minute ago (beyond the 30 s leeway) is refused."""
    minted_at(-(3600 + 60))
    logged = assert_denied(cognito.access_token(), logs)
    assert "expired (exp)" in logged


def test_token_expired_within_leeway_is_allowed(cognito: Cognito, minted_at: Callable[[float], None]) -> None:
    """Clock skew of a few seconds does not lock anyone out."""
    minted_at(-(3600 + 5))
    assert authorize(cognito.access_token())["context"] == {"username": "alice"}


def test_token_issued_in_the_future_is_denied(
    cognito: Cognito, minted_at: Callable[[float], None], logs: Any
) -> None:
    """A token whose iat lies beyond the leeway in the future is refused."""
    minted_at(600)
    assert "issued in the future" in assert_denied(cognito.access_token(), logs)


def test_bad_signature_is_denied(cognito: Cognito, logs: Any) -> None:
    """One flipped bit in the signature is enough to refuse."""
    logged = assert_denied(with_flipped_signature(cognito.access_token()), logs)
    assert "signature does not verify" in logged


def test_payload_edited_after_signing_is_denied(cognito: Cognito, logs: Any) -> None:
    """Renaming yourself in the payload breaks the signature."""
    assert_denied(with_claims(cognito.access_token("bob"), username="alice"), logs)


def test_token_from_another_pool_is_denied(cognito: Cognito, logs: Any) -> None:
    """moto signs every pool with the same key, so only the issuer check stands in the way."""
    token = cognito.access_token("Alice", pool=cognito.other_pool)
    assert jwt.get_unverified_header(token)["kid"] == "dummy"
    assert "another user pool" in assert_denied(token, logs)


def test_token_for_another_app_client_is_denied(cognito: Cognito, logs: Any) -> None:
    """Same pool, same user, another app client: refused."""
    token = cognito.access_token("Alice", client_id=cognito.pool.other_client_id)
    assert "another app client" in assert_denied(token, logs)


def test_id_token_is_denied(cognito: Cognito, logs: Any) -> None:
    """An ID token is signed by the same pool, but it is not an access token."""
    id_token = cognito.tokens("Alice")["IdToken"]
    assert "token_use is 'id'" in assert_denied(id_token, logs)


def test_alg_none_is_denied(cognito: Cognito, logs: Any) -> None:
    """An unsigned token claiming alg none is refused before any key is looked up."""
    token = with_header(cognito.access_token(), {"alg": "none", "typ": "JWT"}, signature="")
    assert "algorithm is not RS256" in assert_denied(token, logs)


def test_hmac_token_is_denied(cognito: Cognito, logs: Any) -> None:
    """HS256 with a known kid is refused whatever the secret: only RS256 is accepted."""
    secret = "s" * 32
    token = jwt.encode(claims_of(cognito.access_token()), secret, algorithm="HS256", headers={"kid": "dummy"})
    assert "algorithm is not RS256" in assert_denied(token, logs)


def test_token_without_key_id_is_denied(cognito: Cognito, logs: Any) -> None:
    """A header without kid names no key to check against."""
    assert_denied(with_header(cognito.access_token(), {"alg": "RS256"}), logs)


def test_invalid_username_claim_is_denied(cognito: Cognito, logs: Any) -> None:
    """Even a validly signed token needs a username of the protocol's form (re-signed here)."""
    claims = claims_of(cognito.access_token()) | {"username": "Not Valid!"}
    key = new_rsa_key()
    verifier = token_verifier.TokenVerifier(
        issuer=cognito.pool.issuer, client_id=cognito.pool.client_id, signing_keys=StaticKeys(key, "k1")
    )
    with pytest.raises(token_verifier.InvalidToken, match="username"):
        verifier.verify(signed_with(key, "k1", claims))


def test_unreachable_jwks_is_denied_and_logged_as_error(
    cognito: Cognito, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    """When the keys cannot be fetched the answer is still a Deny, with the failure logged."""
    monkeypatch.setenv("JWKS_URL", "http://127.0.0.1:9/nowhere/.well-known/jwks.json")
    token_verifier.default_verifier.cache_clear()
    logged = assert_denied(cognito.access_token(), logs)
    assert '"level":"ERROR"' in logged
    assert "KeysUnavailable" in logged


def test_missing_configuration_is_denied(
    cognito: Cognito, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    """A stack without USER_POOL_CLIENT_ID refuses everyone and says which variable is missing."""
    monkeypatch.delenv("USER_POOL_CLIENT_ID")
    token_verifier.default_verifier.cache_clear()
    assert "USER_POOL_CLIENT_ID" in assert_denied(cognito.access_token(), logs)


def test_verifier_is_built_once_per_process(cognito: Cognito) -> None:
    """Warm invocations reuse the verifier and with it the cached key set."""
    authorize(cognito.access_token())
    first = token_verifier.default_verifier()
    authorize(cognito.access_token("bob"))
    assert token_verifier.default_verifier() is first


# The key set: cached, refetched on an unknown key id, and not more often than the cooldown allows.


class StaticKeys:
    """A key source holding exactly one key."""

    def __init__(self, key: Any, kid: str) -> None:
        self._key = token_verifier.public_key_of(public_jwk(key, kid))
        self._kid = kid

    def get_signing_key(self, kid: str) -> rsa.PublicKey:
        if kid != self._kid:
            raise token_verifier.UnknownKey(f"no key {kid}")
        return self._key


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key set the test can rotate, counting requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests = 0
        self.status = 200
        self.raw_body: bytes | None = None  # when set, answered instead of the key set
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = owner.raw_body or json.dumps({"keys": owner.keys}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/pool/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_rotating"


def rotating_claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "sub-1",
        "client_id": "client-1",
        "token_use": "access",
        "username": "carol",
        "iat": now,
        "exp": now + 600,
    }


def verifier_for(server: JwksServer, cooldown_seconds: float) -> token_verifier.TokenVerifier:
    keys = token_verifier.JwksKeys(server.url, refresh_cooldown_seconds=cooldown_seconds)
    return token_verifier.TokenVerifier(issuer=ISSUER, client_id="client-1", signing_keys=keys)


def test_keys_are_fetched_once_and_cached(jwks_server: JwksServer) -> None:
    """Many verifications, one HTTP request for the key set."""
    key = new_rsa_key()
    jwks_server.keys = [public_jwk(key, "k1")]
    verifier = verifier_for(jwks_server, cooldown_seconds=30)
    for _ in range(5):
        assert verifier.verify(signed_with(key, "k1", rotating_claims())).username == "carol"
    assert jwks_server.requests == 1


def test_rotated_key_is_fetched_on_unknown_kid(jwks_server: JwksServer) -> None:
    """After Cognito rotates its keys, a token with the new kid triggers one refetch and passes."""
    old, new = new_rsa_key(), new_rsa_key()
    jwks_server.keys = [public_jwk(old, "old")]
    verifier = verifier_for(jwks_server, cooldown_seconds=0.2)
    verifier.verify(signed_with(old, "old", rotating_claims()))
    jwks_server.keys = [public_jwk(old, "old"), public_jwk(new, "new")]
    time.sleep(0.3)
    assert verifier.verify(signed_with(new, "new", rotating_claims())).username == "carol"
    assert jwks_server.requests == 2


def test_unknown_kid_refetches_at_most_once_per_cooldown(jwks_server: JwksServer) -> None:
    """A flood of tokens with made-up key ids costs at most one refetch per cooldown, then refusal."""
    key, stranger = new_rsa_key(), new_rsa_key()
    jwks_server.keys = [public_jwk(key, "k1")]
    verifier = verifier_for(jwks_server, cooldown_seconds=0.5)
    verifier.verify(signed_with(key, "k1", rotating_claims()))
    forged = [signed_with(stranger, f"forged-{n}", rotating_claims()) for n in range(3)]
    time.sleep(0.6)
    for token in forged:
        with pytest.raises(token_verifier.InvalidToken, match="does not publish"):
            verifier.verify(token)
    assert jwks_server.requests == 2  # the first fetch, then one refresh for the first unknown kid


def test_token_signed_with_an_unpublished_key_is_denied(cognito: Cognito, logs: Any) -> None:
    """Real claims re-signed with a key the pool never published: refetch, find nothing, refuse."""
    token = signed_with(new_rsa_key(), "rotated-key", claims_of(cognito.access_token()))
    assert "does not publish" in assert_denied(token, logs)


# What the verifier checks by hand: the hash under the signature, the encoding, the key, the claims.


def signed_over(key: Any, header: dict[str, Any], claims: dict[str, Any], digest: Any) -> str:
    """A JWS over ``header`` and ``claims`` with RSASSA-PKCS1-v1_5 and the given hash."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), digest)
    return f"{signing_input}.{b64url(signature)}"


def static_verifier(key: Any, kid: str = "k1") -> token_verifier.TokenVerifier:
    return token_verifier.TokenVerifier(
        issuer=ISSUER, client_id="client-1", signing_keys=StaticKeys(key, kid)
    )


def test_signature_over_another_hash_is_refused() -> None:
    """A valid PKCS#1 v1.5 signature over SHA-512 under an RS256 header is refused: RS256 is SHA-256."""
    key = new_rsa_key()
    token = signed_over(key, {"alg": "RS256", "kid": "k1"}, rotating_claims(), hashes.SHA512())
    with pytest.raises(token_verifier.InvalidToken, match="over SHA-512, not SHA-256"):
        static_verifier(key).verify(token)


def test_same_key_and_sha256_is_accepted() -> None:
    """The control of the test above: the same construction with SHA-256 passes."""
    key = new_rsa_key()
    token = signed_over(key, {"alg": "RS256", "kid": "k1"}, rotating_claims(), hashes.SHA256())
    assert static_verifier(key).verify(token).username == "carol"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda h, p, s: (h + "=", p, s), "header is not base64url"),
        (lambda h, p, s: (h, p.replace(p[5], "+", 1), s), "does not verify|not base64url"),
        (lambda h, p, s: (h, p, s + "="), "signature is not base64url"),
        (lambda h, p, s: (h, p, s[:-1] + "*"), "signature is not base64url"),
        (lambda h, p, s: (b64url(b"[1, 2]"), p, s), "header is not a JSON object"),
        (lambda h, p, s: (h, p, s[:1]), "signature is not base64url"),
    ],
)
def test_malformed_segments_are_refused(
    edit: Callable[[str, str, str], tuple[str, str, str]], reason: str
) -> None:
    """Padding, characters outside base64url, an impossible length or a header that is not an object:
    refused with the reason, never an exception of another kind."""
    key = new_rsa_key()
    header, payload, signature = signed_with(key, "k1", rotating_claims()).split(".")
    with pytest.raises(token_verifier.InvalidToken, match=reason):
        static_verifier(key).verify(".".join(edit(header, payload, signature)))


def test_signature_not_below_the_modulus_is_refused() -> None:
    """A signature that is not a number below the key's modulus (RFC 8017) is refused."""
    key = new_rsa_key()
    header, payload, _ = signed_with(key, "k1", rotating_claims()).split(".")
    modulus = key.public_key().public_numbers().n
    forged = f"{header}.{payload}.{b64url(modulus.to_bytes(256, 'big'))}"
    with pytest.raises(token_verifier.InvalidToken, match="does not verify"):
        static_verifier(key).verify(forged)


def test_missing_claims_are_refused() -> None:
    """A signed token without exp (or any other required claim) is refused, naming what is missing."""
    key = new_rsa_key()
    claims = {name: value for name, value in rotating_claims().items() if name != "exp"}
    with pytest.raises(token_verifier.InvalidToken, match="claims missing: exp"):
        static_verifier(key).verify(signed_with(key, "k1", claims))


def test_key_shorter_than_2048_bits_is_not_used(jwks_server: JwksServer) -> None:
    """A 1024-bit key in the key set is skipped, so a token it signed names no usable key."""
    weak = rsa_keys.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="shorter than 2048 bits"):
        token_verifier.public_key_of(public_jwk(weak, "weak"))
    jwks_server.keys = [public_jwk(weak, "weak")]
    with pytest.raises(token_verifier.InvalidToken, match="does not publish"):
        verifier_for(jwks_server, cooldown_seconds=30).verify(
            signed_over(weak, {"alg": "RS256", "kid": "weak"}, rotating_claims(), hashes.SHA256())
        )


def test_keys_of_skips_what_is_not_an_rs256_signing_key() -> None:
    """Encryption keys, other key types and keys without a kid are left out of the key set."""
    jwk = public_jwk(new_rsa_key(), "k1")
    document = {
        "keys": [
            jwk,
            jwk | {"kid": "enc", "use": "enc"},
            jwk | {"kid": "ec", "kty": "EC"},
            jwk | {"kid": "ps", "alg": "PS256"},
            {key: value for key, value in jwk.items() if key != "kid"},
            "not a key",
        ]
    }
    assert list(token_verifier.keys_of(document)) == ["k1"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>"),
        (200, b'{"no": "keys"}'),
        (200, b'{"keys": []}' + b" " * 70_000),
        (503, b'{"keys": []}'),
    ],
)
def test_a_key_set_that_is_not_one_makes_keys_unavailable(
    jwks_server: JwksServer, status: int, body: bytes
) -> None:
    """HTML, JSON without keys, an oversized answer or an error status: KeysUnavailable (ours to look
    into), no crash."""
    jwks_server.status, jwks_server.raw_body = status, body
    with pytest.raises(token_verifier.KeysUnavailable):
        token_verifier.JwksKeys(jwks_server.url).get_signing_key("k1")
