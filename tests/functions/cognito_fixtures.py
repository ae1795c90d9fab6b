"""Real Cognito tokens for the sign-in tests, minted by moto's Cognito in server mode.

moto signs every pool's tokens with one RS256 key (kid ``dummy``) and serves it at
``/<pool-id>/.well-known/jwks.json``, so the verifier fetches its keys over real HTTP exactly as it
does from Cognito. Tokens are edited or re-signed here only to build the forgeries the tests refuse.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import jwt
import pytest
from chat import config, token_verifier
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.cognitoidp import models as cognito_models
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
PASSWORD = "Correct-Horse-9!"
DEFAULT_USERS = ("Alice", "bob")


@dataclass(frozen=True)
class Pool:
    """One user pool with two app clients, as the tests see it."""

    id: str
    client_id: str
    other_client_id: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.id}"


@dataclass
class Cognito:
    """moto's Cognito behind a local HTTP endpoint, with a pool for the stack and a stranger's pool."""

    endpoint: str
    client: Any
    pool: Pool = field(init=False)
    other_pool: Pool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = self._create_pool("chat")
        self.other_pool = self._create_pool("somebody-else")

    def jwks_url(self, pool: Pool | None = None) -> str:
        return f"{self.endpoint}/{(pool or self.pool).id}/.well-known/jwks.json"

    def tokens(
        self, username: str = "Alice", *, pool: Pool | None = None, client_id: str | None = None
    ) -> Any:
        """The AuthenticationResult (AccessToken, IdToken, ...) of a password sign-in."""
        pool = pool or self.pool
        answer = self.client.initiate_auth(
            ClientId=client_id or pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )
        return answer["AuthenticationResult"]

    def access_token(self, username: str = "Alice", **kwargs: Any) -> str:
        return str(self.tokens(username, **kwargs)["AccessToken"])

    def _create_pool(self, name: str) -> Pool:
        pool_id = self.client.create_user_pool(PoolName=name, UsernameConfiguration={"CaseSensitive": False})[
            "UserPool"
        ]["Id"]
        client_ids = [
            self.client.create_user_pool_client(
                UserPoolId=pool_id, ClientName=client_name, ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
            )["UserPoolClient"]["ClientId"]
            for client_name in ("web", "another-app")
        ]
        for username in DEFAULT_USERS:
            # SignUp leaves moto's users UNCONFIRMED; an admin-created user with a permanent password
            # signs in at once.
            self.client.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
            self.client.admin_set_user_password(
                UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
            )
        return Pool(id=pool_id, client_id=client_ids[0], other_client_id=client_ids[1])


# Fixtures carry a name= so that test modules import them as *_fixture without shadowing warnings.


@pytest.fixture(scope="module", name="cognito")
def cognito_fixture() -> Iterator[Cognito]:
    """A moto server on a free port of 127.0.0.1, with its pools, for one test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield Cognito(endpoint=endpoint, client=client)
    finally:
        client.close()
        server.stop()


@pytest.fixture(name="verifier_env")
def verifier_env_fixture(cognito: Cognito, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The authorizer's environment pointed at moto, and a fresh process-wide verifier."""
    for name in (config.TOKEN_ISSUER, config.AUTO_CONFIRM):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.USER_POOL_ID, cognito.pool.id)
    monkeypatch.setenv(config.USER_POOL_CLIENT_ID, cognito.pool.client_id)
    monkeypatch.setenv(config.JWKS_URL, cognito.jwks_url())
    token_verifier.default_verifier.cache_clear()
    yield
    token_verifier.default_verifier.cache_clear()


@pytest.fixture(name="minted_at")
def minted_at_fixture(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Call with an offset in seconds to make moto mint the following tokens that far from now."""

    def shift(offset_seconds: float) -> None:
        clock = SimpleNamespace(time=lambda: time.time() + offset_seconds)
        monkeypatch.setattr(cognito_models, "time", clock)

    return shift


def capture_logs(logger: Any, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Everything a Powertools logger writes (the JSON lines CloudWatch would get), from now on."""
    sink = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", sink)
    return sink


# Building forgeries out of real tokens.


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64url(token.split(".")[1]))
    return claims


def with_header(token: str, header: dict[str, Any], signature: str | None = None) -> str:
    _, payload, original_signature = token.split(".")
    encoded = b64url(json.dumps(header).encode())
    return f"{encoded}.{payload}.{original_signature if signature is None else signature}"


def with_claims(token: str, **changes: Any) -> str:
    """The same header and signature over a payload edited after signing."""
    header, _, signature = token.split(".")
    claims = claims_of(token) | changes
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def with_flipped_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(unb64url(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_with(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return jwk | {"kid": kid, "alg": "RS256", "use": "sig"}
