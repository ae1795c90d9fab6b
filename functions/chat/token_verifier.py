"""Verifying Cognito access tokens: the identity behind every connection.

A token is accepted only when all of this holds:

- its header names RS256 and a key id, and its signature verifies against that key from the user
  pool's JWKS as RSASSA-PKCS1-v1_5 with SHA-256 (no other algorithm or hash is ever tried, so
  ``alg: none``, HMAC tricks and a signature over another hash fail);
- ``iss`` is the pool's issuer, ``token_use`` is ``access`` (an ID token is refused) and
  ``client_id`` is this stack's app client (a token for another client or pool is refused);
- it has not expired, allowing ``LEEWAY_SECONDS`` of clock skew, and was not issued in the future;
- its ``username`` claim is a valid username, which becomes the lower-cased identity.

The signature is checked with the pure-Python ``rsa`` package and the claims here, not with a
general JWT library: the authorizer is on every connection's critical path, and PyJWT's RS256
needs ``cryptography``, whose import alone took about 110 ms of the authorizer's cold start.
Cognito signs with RS256 only, and the claims to check are Cognito's own (``token_use``,
``client_id``), so little of a general library would be used anyway.

The key set is fetched once per process and cached across invocations (``JwksKeys``). It is kept
for ``JWKS_LIFESPAN_SECONDS`` and, on a key id it does not know (Cognito rotated its keys), fetched
again at most once per ``JWKS_REFRESH_COOLDOWN_SECONDS``, so a stream of forged key ids cannot turn
the authorizer into a load generator against the JWKS endpoint.

Exceptions (never carrying the token itself)::

    AuthError
    ├── InvalidToken     the client's token is unacceptable: refuse, it is the client's mistake
    └── KeysUnavailable  the JWKS could not be fetched: refuse, and it is ours to look into
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import rsa

from chat import config
from chat.usernames import normalize_username

ALGORITHM = "RS256"
HASH = "SHA-256"  # what rsa.verify names the hash of an RS256 signature
LEEWAY_SECONDS = 30
JWKS_LIFESPAN_SECONDS = 3600.0
JWKS_REFRESH_COOLDOWN_SECONDS = 30.0
# The authorizer has to answer well within API Gateway's limits; a slow JWKS endpoint must not stall it.
JWKS_TIMEOUT_SECONDS = 5.0
# A user pool publishes two keys of a few hundred bytes each; anything far larger is not its JWKS.
MAX_JWKS_BYTES = 65_536
# Cognito's keys are 2048-bit; a shorter key is not one of them, and too weak to trust.
MIN_KEY_BITS = 2048
# Cognito access tokens are about 1 KB; anything far larger is not one, and is not worth parsing.
MAX_TOKEN_LENGTH = 16_384
ACCESS_TOKEN_USE = "access"  # noqa: S105 - a claim value, not a secret
# client_id and username are checked after token_use, so an ID token is refused as one.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "sub", "token_use")
# Base64url without padding, as JWS segments are written (RFC 7515, section 2).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class AuthError(Exception):
    """A token was refused; the message says why and never contains the token."""


class InvalidToken(AuthError):
    """The token is not a valid access token of this user pool and app client."""


class UnknownKey(InvalidToken):
    """The token names a key id the user pool does not publish."""


class KeysUnavailable(AuthError):
    """The user pool's signing keys could not be fetched."""


class SigningKeys(Protocol):
    """Where public keys come from: ``JwksKeys`` in production, anything alike in tests. Raises
    ``UnknownKey`` for a key id it does not have and ``KeysUnavailable`` when it cannot tell."""

    def get_signing_key(self, kid: str) -> rsa.PublicKey: ...


@dataclass(frozen=True)
class Identity:
    """Who a verified token belongs to."""

    username: str
    sub: str


@dataclass(frozen=True)
class VerifierSettings:
    """What a token must match, and where the pool's keys are published."""

    issuer: str
    client_id: str
    jwks_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VerifierSettings:
        env = os.environ if env is None else env
        pool_id = config.required(env, config.USER_POOL_ID)
        issuer = env.get(config.TOKEN_ISSUER, "").strip() or _default_issuer(pool_id, env)
        jwks_url = env.get(config.JWKS_URL, "").strip() or f"{issuer}/.well-known/jwks.json"
        client_id = config.required(env, config.USER_POOL_CLIENT_ID)
        return cls(issuer=issuer, client_id=client_id, jwks_url=jwks_url)


def _default_issuer(pool_id: str, env: Mapping[str, str]) -> str:
    # A pool id is "<region>_<suffix>", so the region is known even where AWS_REGION is not set.
    region, _, suffix = pool_id.partition("_")
    if not suffix:
        region = env.get("AWS_REGION", "").strip()
    if not region:
        raise config.ConfigError(
            f"cannot tell the region of user pool {pool_id!r}; set {config.TOKEN_ISSUER}"
        )
    return f"https://cognito-idp.{region}.{config.url_suffix(region, env)}/{pool_id}"


# ---- the key set ---------------------------------------------------------------------------------


def public_key_of(jwk: Mapping[str, Any]) -> rsa.PublicKey:
    """The RSA public key of one JWK (RFC 7517/7518); ``ValueError`` for anything else, a key meant
    for another use or algorithm, or one shorter than ``MIN_KEY_BITS``."""
    if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
        raise ValueError("not an RS256 signing key")
    modulus, exponent = _unsigned(jwk.get("n")), _unsigned(jwk.get("e"))
    if modulus.bit_length() < MIN_KEY_BITS:
        raise ValueError(f"key shorter than {MIN_KEY_BITS} bits")
    if exponent < 3 or exponent % 2 == 0:
        raise ValueError("not a usable RSA exponent")
    return rsa.PublicKey(modulus, exponent)


def _unsigned(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("key parameter is not a string")
    return int.from_bytes(b64url_decode(value), "big")


def keys_of(jwks: object) -> dict[str, rsa.PublicKey]:
    """The usable keys of a JWKS document by key id; keys that are not RS256 signing keys are
    skipped, as RFC 7517 (section 5) asks of keys a reader does not understand."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ValueError("not a JWKS document")
    usable = {}
    for jwk in keys:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str):
            continue
        try:
            usable[kid] = public_key_of(jwk)
        except ValueError:
            continue
    return usable


def fetch_jwks(url: str, timeout_seconds: float) -> object:
    """The JSON document at ``url``; ``KeysUnavailable`` when it cannot be had."""
    # http.client rather than urllib.request: one GET needs none of urllib's handlers, which would
    # add a fifth to the import this module costs the authorizer's cold start.
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KeysUnavailable(f"not an HTTP(S) URL: {url!r}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=timeout_seconds)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        body = response.read(MAX_JWKS_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:  # refused, timed out, TLS, broken answer
        raise KeysUnavailable(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise KeysUnavailable(f"the JWKS endpoint answered {response.status}")
    if len(body) > MAX_JWKS_BYTES:
        raise KeysUnavailable(f"key set larger than {MAX_JWKS_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise KeysUnavailable("key set is not JSON") from None


class JwksKeys:
    """A user pool's signing keys from its JWKS URL, cached for ``lifespan_seconds`` and refetched
    on an unknown key id at most once per ``refresh_cooldown_seconds``. Safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        lifespan_seconds: float = JWKS_LIFESPAN_SECONDS,
        refresh_cooldown_seconds: float = JWKS_REFRESH_COOLDOWN_SECONDS,
        timeout_seconds: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._lifespan_seconds = lifespan_seconds
        self._cooldown_seconds = refresh_cooldown_seconds
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._keys: dict[str, rsa.PublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def get_signing_key(self, kid: str) -> rsa.PublicKey:
        with self._lock:
            now = self._clock()
            if self._stale(now) or (kid not in self._keys and self._may_refetch(now)):
                self._refresh(now)
            key = self._keys.get(kid)
        if key is None:
            raise UnknownKey("signed with a key the user pool does not publish")
        return key

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._lifespan_seconds

    def _may_refetch(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._cooldown_seconds

    def _refresh(self, now: float) -> None:
        document = fetch_jwks(self._url, self._timeout_seconds)
        try:
            self._keys = keys_of(document)
        except ValueError as exc:
            raise KeysUnavailable(str(exc)) from None
        self._fetched_at = now


# ---- the token -----------------------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    """Strict base64url without padding; ``ValueError`` for any other character or length."""
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except ValueError:
        raise InvalidToken(f"malformed token: {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: {what} is not a JSON object")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class TokenVerifier:
    """Checks Cognito access tokens against one user pool and one app client."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        signing_keys: SigningKeys,
        leeway_seconds: int = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._signing_keys = signing_keys
        self._leeway_seconds = leeway_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: VerifierSettings) -> TokenVerifier:
        return cls(
            issuer=settings.issuer, client_id=settings.client_id, signing_keys=JwksKeys(settings.jwks_url)
        )

    def verify(self, token: str) -> Identity:
        """The identity a valid access token carries; ``AuthError`` for anything else."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"token longer than {MAX_TOKEN_LENGTH} characters")
        segments = token.split(".")
        if len(segments) != 3:
            raise InvalidToken("malformed token: not three segments")
        header, payload, signature = segments
        kid = self._key_id(_json_object(header, "header"))
        self._check_signature(f"{header}.{payload}".encode("ascii"), signature, kid)
        claims = self._checked_claims(_json_object(payload, "payload"))
        if claims["token_use"] != ACCESS_TOKEN_USE:
            raise InvalidToken(f"token_use is {claims['token_use']!r}, not {ACCESS_TOKEN_USE!r}")
        if claims.get("client_id") != self._client_id:
            raise InvalidToken("issued to another app client")
        username = normalize_username(claims.get("username"))
        if username is None or not isinstance(claims["sub"], str):
            raise InvalidToken("username or sub claim is malformed")
        return Identity(username=username, sub=claims["sub"])

    @staticmethod
    def _key_id(header: dict[str, Any]) -> str:
        # Read before any key lookup, so a token that could never pass costs no JWKS request.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id in the header")
        return kid

    def _check_signature(self, signed: bytes, signature: str, kid: str) -> None:
        try:
            raw = b64url_decode(signature)
        except ValueError:
            raise InvalidToken("malformed token: signature is not base64url") from None
        key = self._signing_keys.get_signing_key(kid)
        # RFC 8017 (section 8.2.2): the signature is a number below the modulus, of the modulus' length.
        if int.from_bytes(raw, "big") >= key.n:
            raise InvalidToken("signature does not verify")
        try:
            hash_name = rsa.verify(signed, raw, key)
        except rsa.VerificationError:
            raise InvalidToken("signature does not verify") from None
        if hash_name != HASH:
            raise InvalidToken(f"signature is over {hash_name}, not {HASH}")

    def _checked_claims(self, claims: dict[str, Any]) -> dict[str, Any]:
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise InvalidToken(f"claims missing: {', '.join(missing)}")
        if claims["iss"] != self._issuer:
            raise InvalidToken("issued by another user pool (iss)")
        if not _is_number(claims["exp"]) or not _is_number(claims["iat"]):
            raise InvalidToken("exp or iat is not a number")
        now = self._clock()
        if now > claims["exp"] + self._leeway_seconds:
            raise InvalidToken("expired (exp)")
        if claims["iat"] > now + self._leeway_seconds:
            raise InvalidToken("issued in the future (iat)")
        # Cognito's access tokens carry no nbf; should one ever appear, it is honoured.
        if "nbf" in claims and (not _is_number(claims["nbf"]) or claims["nbf"] > now + self._leeway_seconds):
            raise InvalidToken("not valid yet (nbf)")
        return claims


@lru_cache(maxsize=1)
def default_verifier() -> TokenVerifier:
    """The process-wide verifier, built on first use so its key cache outlives one invocation."""
    return TokenVerifier.from_settings(VerifierSettings.from_env())
