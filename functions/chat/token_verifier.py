"""Verifying Cognito access tokens: the identity behind every connection.

A token is accepted only when all of this holds:

- its header names RS256 and a key id, and its signature verifies against that key from the user
  pool's JWKS (no other algorithm is ever tried, so ``alg: none`` and HMAC tricks fail);
- ``iss`` is the pool's issuer, ``token_use`` is ``access`` (an ID token is refused) and
  ``client_id`` is this stack's app client (a token for another client or pool is refused);
- it has not expired, allowing ``LEEWAY_SECONDS`` of clock skew, and was not issued in the future;
- its ``username`` claim is a valid username, which becomes the lower-cased identity.

The JWKS client is built once per process and cached across invocations. It keeps the key set for
``JWKS_LIFESPAN_SECONDS`` and, on a key id it does not know (Cognito rotated its keys), fetches the
set again at most once per ``JWKS_REFRESH_COOLDOWN_SECONDS``, so a stream of forged key ids cannot
turn the authorizer into a load generator against the JWKS endpoint.

Exceptions (never carrying the token itself)::

    AuthError
    ├── InvalidToken     the client's token is unacceptable: refuse, it is the client's mistake
    └── KeysUnavailable  the JWKS could not be fetched: refuse, and it is ours to look into
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import jwt

from chat import config
from chat.usernames import normalize_username

ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30
JWKS_LIFESPAN_SECONDS = 3600.0
JWKS_REFRESH_COOLDOWN_SECONDS = 30.0
# The authorizer has to answer well within API Gateway's limits; a slow JWKS endpoint must not stall it.
JWKS_TIMEOUT_SECONDS = 5.0
# Cognito access tokens are about 1 KB; anything far larger is not one, and is not worth parsing.
MAX_TOKEN_LENGTH = 16_384
ACCESS_TOKEN_USE = "access"  # noqa: S105 - a claim value, not a secret
# client_id and username are checked after token_use, so an ID token is refused as one.
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "token_use"]


class AuthError(Exception):
    """A token was refused; the message says why and never contains the token."""


class InvalidToken(AuthError):
    """The token is not a valid access token of this user pool and app client."""


class KeysUnavailable(AuthError):
    """The user pool's signing keys could not be fetched."""


class SigningKeys(Protocol):
    """Where public keys come from: ``jwt.PyJWKClient`` in production, anything alike in tests."""

    def get_signing_key(self, kid: str) -> jwt.PyJWK: ...


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


def build_jwks_client(
    jwks_url: str, *, refresh_cooldown_seconds: float = JWKS_REFRESH_COOLDOWN_SECONDS
) -> jwt.PyJWKClient:
    """A JWKS client that caches the key set and refetches it, rate-limited, on an unknown key id."""
    return jwt.PyJWKClient(
        jwks_url,
        cache_jwk_set=True,
        lifespan=JWKS_LIFESPAN_SECONDS,
        cooldown_duration=refresh_cooldown_seconds,
        timeout=JWKS_TIMEOUT_SECONDS,
    )


class TokenVerifier:
    """Checks Cognito access tokens against one user pool and one app client."""

    def __init__(
        self, *, issuer: str, client_id: str, signing_keys: SigningKeys, leeway_seconds: int = LEEWAY_SECONDS
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._signing_keys = signing_keys
        self._leeway_seconds = leeway_seconds

    @classmethod
    def from_settings(cls, settings: VerifierSettings) -> TokenVerifier:
        return cls(
            issuer=settings.issuer,
            client_id=settings.client_id,
            signing_keys=build_jwks_client(settings.jwks_url),
        )

    def verify(self, token: str) -> Identity:
        """The identity a valid access token carries; ``AuthError`` for anything else."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"token longer than {MAX_TOKEN_LENGTH} characters")
        kid = self._key_id(token)
        claims = self._verified_claims(token, self._signing_key(kid))
        if claims["token_use"] != ACCESS_TOKEN_USE:
            raise InvalidToken(f"token_use is {claims['token_use']!r}, not {ACCESS_TOKEN_USE!r}")
        if claims.get("client_id") != self._client_id:
            raise InvalidToken("issued to another app client")
        username = normalize_username(claims.get("username"))
        if username is None or not isinstance(claims["sub"], str):
            raise InvalidToken("username or sub claim is malformed")
        return Identity(username=username, sub=claims["sub"])

    def _key_id(self, token: str) -> str:
        # Read before any key lookup, so a token that could never pass costs no JWKS request.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"malformed token: {type(exc).__name__}") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id in the header")
        return kid

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._signing_keys.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(f"cannot fetch the user pool's keys: {exc}") from None
        except jwt.PyJWKClientError:
            raise InvalidToken("signed with a key the user pool does not publish") from None

    def _verified_claims(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                leeway=self._leeway_seconds,
                # Cognito access tokens carry client_id instead of aud; it is checked by hand.
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the failed check ("Signature has expired"), not the token.
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        return claims


@lru_cache(maxsize=1)
def default_verifier() -> TokenVerifier:
    """The process-wide verifier, built on first use so its key cache outlives one invocation."""
    return TokenVerifier.from_settings(VerifierSettings.from_env())
