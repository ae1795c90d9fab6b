"""The stack's Cognito endpoint over HTTP: only the operations a client may call, and sign-in that
does not tell whether a user exists (the app client's PreventUserExistenceErrors)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from local_stack.cognito_proxy import CLIENT_OPERATIONS, INCORRECT_SIGN_IN
from local_stack.testing import RunningStack, User, unique_username

ADMIN_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("ListUsers", {}),
    ("AdminGetUser", {"Username": "someone"}),
    ("AdminCreateUser", {"Username": "intruder"}),
    ("AdminSetUserPassword", {"Username": "someone", "Password": "Hacked-pass-1", "Permanent": True}),
    ("AdminDeleteUser", {"Username": "someone"}),
    ("AdminInitiateAuth", {"AuthFlow": "ADMIN_USER_PASSWORD_AUTH"}),
    ("DescribeUserPool", {}),
    ("DeleteUserPool", {}),
    ("UpdateUserPoolClient", {"ClientId": "x"}),
    ("CreateUserPoolClient", {"ClientName": "mine"}),
]


def post(
    stack: RunningStack, operation: str, body: dict[str, Any]
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A raw call, as a web page would make it (no AWS signature)."""
    request = urllib.request.Request(
        stack.cognito_url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture(scope="module")
def henry(stack: RunningStack) -> User:
    return stack.create_user("henry")


def test_client_operations_are_those_cognito_takes_without_credentials() -> None:
    """Every operation served is one botocore's model marks noAuth; none of the Admin* ones is."""
    model = botocore.session.get_session().get_service_model("cognito-idp")
    for operation in CLIENT_OPERATIONS:
        assert model.operation_model(operation).auth == ["smithy.api#noAuth"], operation
    assert not {name for name in model.operation_names if name.startswith("Admin")} & CLIENT_OPERATIONS


@pytest.mark.parametrize(("operation", "body"), ADMIN_CALLS, ids=[name for name, _ in ADMIN_CALLS])
def test_admin_operations_are_refused(stack: RunningStack, operation: str, body: dict[str, Any]) -> None:
    """Admin and pool-management calls get a Cognito-shaped 400 that a page can read (CORS)."""
    status, headers, answer = post(stack, operation, {"UserPoolId": stack.config["userPoolId"], **body})
    assert status == 400
    assert answer["__type"] == "MissingAuthenticationTokenException"
    assert operation in answer["message"]
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_a_refused_admin_call_changes_nothing(stack: RunningStack, henry: User) -> None:
    """AdminSetUserPassword through the endpoint fails as boto3 reports it; the old password still works."""
    with pytest.raises(ClientError) as refused:
        stack.cognito_client().admin_set_user_password(
            UserPoolId=stack.config["userPoolId"],
            Username=henry.username,
            Password="Hacked-pass-1",
            Permanent=True,
        )
    assert refused.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert stack.sign_in(henry.username, henry.password).access_token
    with pytest.raises(ClientError):
        stack.sign_in(henry.username, "Hacked-pass-1")


def test_unknown_user_and_wrong_password_answer_alike(stack: RunningStack, henry: User) -> None:
    """Signing in as nobody and with a wrong password: the same NotAuthorizedException and message."""
    answers = []
    for username, password in ((unique_username("nobody"), "password123"), (henry.username, "wrong-pass-1")):
        status, _, answer = post(
            stack,
            "InitiateAuth",
            {
                "ClientId": stack.config["userPoolClientId"],
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": username, "PASSWORD": password},
            },
        )
        answers.append((status, answer))
    assert (
        answers[0] == answers[1] == (400, {"__type": "NotAuthorizedException", "message": INCORRECT_SIGN_IN})
    )


def test_password_recovery_does_not_tell_unknown_users_apart(stack: RunningStack) -> None:
    """ForgotPassword for nobody answers as if a code went out; ConfirmForgotPassword, that it is wrong."""
    client_id = stack.config["userPoolClientId"]
    nobody = unique_username("nobody")
    status, _, answer = post(stack, "ForgotPassword", {"ClientId": client_id, "Username": nobody})
    assert status == 200 and answer["CodeDeliveryDetails"]["Destination"]
    status, _, answer = post(
        stack,
        "ConfirmForgotPassword",
        {"ClientId": client_id, "Username": nobody, "ConfirmationCode": "123456", "Password": "password123"},
    )
    assert (status, answer["__type"]) == (400, "CodeMismatchException")


def test_client_operations_still_work(stack: RunningStack, henry: User) -> None:
    """A signed-in user reads its own account and refreshes its tokens through the endpoint."""
    cognito = stack.cognito_client()
    assert cognito.get_user(AccessToken=henry.access_token)["Username"] == henry.username
    refreshed = cognito.initiate_auth(
        ClientId=stack.config["userPoolClientId"],
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": henry.refresh_token},
    )
    assert refreshed["AuthenticationResult"]["AccessToken"]


def test_a_user_deletes_their_own_account_with_their_access_token(stack: RunningStack) -> None:
    """DeleteUser with the user's access token removes that user, and only that one; a bad token nothing."""
    leaving, staying = stack.create_user("leaving"), stack.create_user("staying")
    status, _, answer = post(stack, "DeleteUser", {"AccessToken": "not-a-token"})
    assert status == 400, answer
    status, _, answer = post(stack, "DeleteUser", {"AccessToken": leaving.access_token})
    assert status == 200, answer
    admin = stack.aws_client("cognito-idp")
    names = {user["Username"] for user in admin.list_users(UserPoolId=stack.config["userPoolId"])["Users"]}
    assert leaving.username not in names
    assert staying.username in names


def test_a_revoked_refresh_token_is_refused_and_the_other_sessions_go_on(stack: RunningStack) -> None:
    """RevokeToken ends one sign-in: a refresh with that token is refused, another sign-in's still works."""
    first = stack.create_user("revoking")
    second = stack.sign_in(first.username)
    client_id = stack.config["userPoolClientId"]

    def refresh(token: str) -> tuple[int, dict[str, Any]]:
        body = {
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "ClientId": client_id,
            "AuthParameters": {"REFRESH_TOKEN": token},
        }
        status, _, answer = post(stack, "InitiateAuth", body)
        return status, answer

    status, answer = post(stack, "RevokeToken", {"Token": first.refresh_token, "ClientId": "another-client"})[
        ::2
    ]
    assert status == 400 and answer["__type"].endswith("NotAuthorizedException"), answer
    assert refresh(first.refresh_token)[0] == 200  # a refusal revokes nothing
    status, _, answer = post(stack, "RevokeToken", {"Token": first.refresh_token, "ClientId": client_id})
    assert status == 200, answer
    status, answer = refresh(first.refresh_token)
    assert status == 400 and answer["__type"].endswith("NotAuthorizedException"), answer
    assert refresh(second.refresh_token)[0] == 200
