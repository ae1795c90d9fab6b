"""Hostile handshakes against the local stack: every token that is not this pool's, this client's,
unexpired, untampered access token is refused (401 without one, 403 for a Deny), and no connection
record is written for the user it names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from local_stack.testing import DEFAULT_PASSWORD, RunningStack, User, unique_username
from tests.support.chat_client import handshake_status

MOTO_KID = "dummy"  # moto signs every pool's tokens with the one key it ships, under this kid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def signed_by_moto(claims: dict[str, Any]) -> str:
    """A token signed with the very key the stack trusts (so only the claims can make it wrong)."""
    key = jwt.algorithms.RSAAlgorithm.from_jwk(
        json.dumps(load_resource("cognitoidp/resources/jwks-private.json"))
    )
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": MOTO_KID})


def expired(user: User) -> str:
    an_hour_ago = int(time.time()) - 3600
    return signed_by_moto(claims_of(user.access_token) | {"iat": an_hour_ago - 3600, "exp": an_hour_ago})


def issued_in_the_future(user: User) -> str:
    tomorrow = int(time.time()) + 86_400
    return signed_by_moto(claims_of(user.access_token) | {"iat": tomorrow, "exp": tomorrow + 3600})


def claims_edited(user: User) -> str:
    """The real header and signature over a payload naming someone else."""
    header, _, signature = user.access_token.split(".")
    claims = claims_of(user.access_token) | {"username": "admin"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def signature_flipped(user: User) -> str:
    header, payload, signature = user.access_token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    return f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"


def alg_none(user: User) -> str:
    header = b64url(json.dumps({"alg": "none", "kid": MOTO_KID}).encode())
    return f"{header}.{user.access_token.split('.')[1]}."


def hs256_with_public_key_as_secret(user: User) -> str:
    """The classic algorithm confusion: HMAC keyed with the pool's public key (PEM)."""
    jwks = load_resource("cognitoidp/resources/jwks-public.json")
    public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64url(json.dumps({"alg": "HS256", "kid": MOTO_KID}).encode())
    signing_input = f"{header}.{user.access_token.split('.')[1]}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def another_key_same_kid(user: User) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims_of(user.access_token), key, algorithm="RS256", headers={"kid": MOTO_KID})


def id_token(user: User) -> str:
    return user.id_token


def refresh_token(user: User) -> str:
    return user.refresh_token


def foreign_pool(user: User, stack: RunningStack) -> str:
    """A genuine access token from another user pool in the same Cognito (same signing key)."""
    cognito = stack.aws_client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=unique_username("foreign"))["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="foreign", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return sign_in_elsewhere(cognito, pool_id, client_id, user.username)


def foreign_client(user: User, stack: RunningStack) -> str:
    """A genuine access token of this pool, issued to another app client."""
    cognito = stack.aws_client("cognito-idp")
    pool_id = stack.config["userPoolId"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return str(
        cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.username, "PASSWORD": DEFAULT_PASSWORD},
        )["AuthenticationResult"]["AccessToken"]
    )


def sign_in_elsewhere(cognito: Any, pool_id: str, client_id: str, username: str) -> str:
    password = "Foreign-Pool-Pass-9!"  # meets moto's default policy
    cognito.admin_create_user(UserPoolId=pool_id, Username=username, TemporaryPassword=password)
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    return str(
        cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]["AccessToken"]
    )


FORGERIES: list[Callable[[User], str]] = [
    expired,
    issued_in_the_future,
    claims_edited,
    signature_flipped,
    alg_none,
    hs256_with_public_key_as_secret,
    another_key_same_kid,
    id_token,
    refresh_token,
]


@pytest.fixture
def victim(stack: RunningStack) -> User:
    return stack.create_user("victim")


def connections_of(stack: RunningStack, username: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.aws_client("dynamodb").scan(
        TableName=stack.table_names["Connections"],
        FilterExpression="username = :u",
        ExpressionAttributeValues={":u": {"S": username}},
        ConsistentRead=True,
    )["Items"]
    return items


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda forge: forge.__name__.replace("_", "-"))
def test_forged_token_is_refused_with_403(
    stack: RunningStack, victim: User, forge: Callable[[User], str]
) -> None:
    """The authorizer denies the token (403) and no connection record is written for its user."""
    assert handshake_status(stack.connect_url(forge(victim))) == 403
    assert connections_of(stack, victim.username) == []


@pytest.mark.parametrize("forge", [foreign_pool, foreign_client], ids=["foreign-pool", "foreign-client"])
def test_genuine_token_of_another_pool_or_client_is_refused_with_403(
    stack: RunningStack, victim: User, forge: Callable[[User, RunningStack], str]
) -> None:
    """A real Cognito access token, signed by the same key but for another pool or app client: 403."""
    assert handshake_status(stack.connect_url(forge(victim, stack))) == 403
    assert connections_of(stack, victim.username) == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("?token=", 401),
        ("?access_token=@token", 401),
        ("?token=garbage", 403),
        ("?token=a.b.c", 403),
        ("?token=" + "A" * 4000, 403),
    ],
    ids=["no-token", "empty-token", "wrong-parameter", "garbage", "three-dots", "long-garbage"],
)
def test_missing_or_malformed_token_is_refused(
    stack: RunningStack, victim: User, query: str, status: int
) -> None:
    """Without a token API Gateway answers 401 before the authorizer; a malformed one gets 403."""
    url = stack.websocket_url + query.replace("@token", victim.access_token)
    assert handshake_status(url) == status
    assert connections_of(stack, victim.username) == []


def test_valid_token_on_an_unknown_stage_is_refused(stack: RunningStack, victim: User) -> None:
    """A good token on a stage the API does not have: 403, as API Gateway answers."""
    url = stack.connect_url(victim.access_token).replace(
        f"/{stack.websocket_url.rsplit('/', 1)[1]}?", "/admin?"
    )
    assert handshake_status(url) == 403
