"""Cognito's JSON API for browsers and CLIs, passed on to moto, with what moto leaves out.

Clients POST ``X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`` requests here (the
``cognitoEndpoint`` of ``/config.json``); most go to moto unchanged. What is added, so the local
pool behaves like the deployed one:

- Only the operations a client may call are served (``CLIENT_OPERATIONS``: those Cognito takes
  without AWS credentials, signed by nothing or by the user's own token). Everything else
  (``ListUsers``, ``AdminSetUserPassword``, every ``Admin*``...) needs IAM credentials on AWS and
  is refused here with a 400 in Cognito's shape: any web page open in the developer's browser
  may call this endpoint (CORS is open). Admin work goes to moto's own endpoint.
- The app client's ``PreventUserExistenceErrors``: signing in as an unknown user answers the
  same ``NotAuthorizedException`` as a wrong password; password recovery and confirmation codes
  for an unknown user answer as if a code was sent, or that the code does not match.
- CORS, so the web page (another origin: the WebSocket port) may call it, preflight included;
- ``SignUp`` first runs the pre-sign-up trigger (the real handler, with a ``PreSignUp_SignUp``
  event); if it raises, the sign-up is refused with Cognito's ``UserLambdaValidationException``.
  When the trigger answers ``autoConfirmUser`` (``autoVerifyEmail``), the new user is confirmed
  (the e-mail marked verified) and the answer says ``UserConfirmed: true``. moto runs no triggers.
- ``DeleteUser`` (a user deleting their own account with their access token), which moto does not
  implement: the token's user is found with ``GetUser`` and deleted with the admin client.
- Usernames are lower-cased on the way in: the pool compares them case-insensitively on AWS,
  moto's pools do not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from local_stack.lambdas import Function, LambdaRuntime

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Content-Type, X-Amz-Target, X-Amz-User-Agent, Authorization, Cache-Control"
    ),
    "Access-Control-Expose-Headers": "x-amzn-ErrorType, x-amzn-RequestId, x-amzn-ErrorMessage",
    "Access-Control-Max-Age": "600",
}
# The operations Cognito serves without AWS credentials (botocore's model marks them noAuth; a
# test checks), as far as this pool uses them: self-service sign-up, sign-in, tokens, the
# signed-in user's own account.
CLIENT_OPERATIONS = frozenset(
    {
        "SignUp",
        "ConfirmSignUp",
        "ResendConfirmationCode",
        "InitiateAuth",
        "RespondToAuthChallenge",
        "GetTokensFromRefreshToken",
        "RevokeToken",
        "GlobalSignOut",
        "GetUser",
        "UpdateUserAttributes",
        "ChangePassword",
        "ForgotPassword",
        "ConfirmForgotPassword",
        "DeleteUser",
    }
)
SIGN_IN_OPERATIONS = frozenset({"InitiateAuth", "RespondToAuthChallenge"})
CODE_SENDING_OPERATIONS = frozenset({"ForgotPassword", "ResendConfirmationCode"})
CODE_CHECKING_OPERATIONS = frozenset({"ConfirmForgotPassword", "ConfirmSignUp"})
INCORRECT_SIGN_IN = "Incorrect username or password."
# What Cognito answers, for an unknown user, where a code would have gone.
SIMULATED_DELIVERY = {
    "CodeDeliveryDetails": {"Destination": "u***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
}
# Headers of moto's answer worth passing on (the rest describe moto's own HTTP server).
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "x-amzn-ErrorType", "x-amzn-RequestId", "x-amzn-ErrorMessage")


def cognito_error(status: int, code: str, message: str) -> web.Response:
    """An error in Cognito's JSON shape (``__type`` and ``message``), which the SDKs map by code."""
    return web.json_response(
        {"__type": code, "message": message},
        status=status,
        content_type=JSON_CONTENT_TYPE,
        headers={"x-amzn-ErrorType": code, **CORS_HEADERS},
    )


class CognitoProxy:
    """Forwards Cognito calls to moto; runs the pre-sign-up trigger around ``SignUp``."""

    def __init__(
        self,
        *,
        moto_endpoint: str,
        user_pool_id: str,
        runtime: LambdaRuntime,
        user_pool_client_id: str = "",
        presignup: Function,
        admin: Callable[[], Any],
        region: str,
    ) -> None:
        self._moto = moto_endpoint.rstrip("/") + "/"
        self._pool_id = user_pool_id
        self._client_id = user_pool_client_id
        self._runtime = runtime
        self._presignup = presignup
        self._admin = admin  # a boto3 cognito-idp client on moto, for AdminConfirmSignUp
        self._region = region
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application, prefix: str) -> None:
        for path in (prefix, prefix + "/"):
            app.router.add_post(path, self.handle)
            app.router.add_route("OPTIONS", path, self.preflight)
        app.on_cleanup.append(self._close)

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers=CORS_HEADERS)

    async def handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        if not target.startswith(TARGET_PREFIX):
            return cognito_error(400, "UnknownOperationException", "Unknown operation")
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return cognito_error(400, "SerializationException", "The request body is not JSON")
        if not isinstance(body, dict):
            return cognito_error(400, "SerializationException", "The request body is not a JSON object")
        operation = target.removeprefix(TARGET_PREFIX)
        if operation not in CLIENT_OPERATIONS:
            return cognito_error(
                400,
                "MissingAuthenticationTokenException",
                f"{operation} needs AWS credentials; this endpoint serves only what a client may call",
            )
        if operation == "SignUp":
            return await self._sign_up(target, body)
        if operation == "DeleteUser":
            return await self._delete_user(body)
        status, payload, headers = await self._forward(target, lower_case_usernames(body))
        if status == 400 and self._says_no_such_user(operation, body, _error_code(payload, headers)):
            return _without_user_existence(operation, status, payload, headers)
        if operation in SIGN_IN_OPERATIONS and _error_code(payload, headers) == "NotAuthorizedException":
            return cognito_error(400, "NotAuthorizedException", INCORRECT_SIGN_IN)
        return _answer(status, payload, headers)

    async def _sign_up(self, target: str, body: dict[str, Any]) -> web.Response:
        trigger = await self._runtime.invoke(
            self._presignup, presignup_event(body, self._pool_id, self._region)
        )
        if trigger.error is not None:
            return cognito_error(
                400, "UserLambdaValidationException", f"PreSignUp failed with error {trigger.error}."
            )
        response = trigger.answer.get("response") if isinstance(trigger.answer, dict) else None
        if not isinstance(response, dict):
            return cognito_error(400, "InvalidLambdaResponseException", "Invalid PreSignUp Lambda response.")
        status, payload, headers = await self._forward(target, lower_case_usernames(body))
        if status == 200 and response.get("autoConfirmUser"):
            await asyncio.to_thread(
                self._confirm, body["Username"].lower(), bool(response.get("autoVerifyEmail"))
            )
            answer = json.loads(payload)
            answer["UserConfirmed"] = True
            payload = json.dumps(answer).encode()
        return _answer(status, payload, headers)

    async def _delete_user(self, body: dict[str, Any]) -> web.Response:
        """The token's own user, deleted: GetUser proves the token (moto checks it) and names the user."""
        token = {"AccessToken": body.get("AccessToken")}
        status, payload, headers = await self._forward(TARGET_PREFIX + "GetUser", token)
        if status != 200:
            return _answer(status, payload, headers)
        username = json.loads(payload)["Username"]
        await asyncio.to_thread(self._admin().admin_delete_user, UserPoolId=self._pool_id, Username=username)
        return _answer(200, b"{}", headers)

    def _says_no_such_user(self, operation: str, body: dict[str, Any], code: str) -> bool:
        if code == "UserNotFoundException":
            return True
        # moto's ConfirmForgotPassword says ResourceNotFound for an unknown user of a known client.
        return (
            code == "ResourceNotFoundException"
            and operation in CODE_CHECKING_OPERATIONS
            and body.get("ClientId") == self._client_id
        )

    def _confirm(self, username: str, verify_email: bool) -> None:
        admin = self._admin()
        admin.admin_confirm_sign_up(UserPoolId=self._pool_id, Username=username)
        if verify_email:
            admin.admin_update_user_attributes(
                UserPoolId=self._pool_id,
                Username=username,
                UserAttributes=[{"Name": "email_verified", "Value": "true"}],
            )

    async def _forward(self, target: str, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"X-Amz-Target": target, "Content-Type": JSON_CONTENT_TYPE}
        async with self._session.post(self._moto, data=json.dumps(body), headers=headers) as reply:
            payload = await reply.read()
            kept = {name: reply.headers[name] for name in FORWARDED_RESPONSE_HEADERS if name in reply.headers}
            return reply.status, payload, kept

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


def _without_user_existence(
    operation: str, status: int, payload: bytes, headers: dict[str, str]
) -> web.Response:
    """The answer for an unknown user that does not say the user is unknown (the app client's
    ``PreventUserExistenceErrors: ENABLED``)."""
    if operation in SIGN_IN_OPERATIONS:
        return cognito_error(400, "NotAuthorizedException", INCORRECT_SIGN_IN)
    if operation in CODE_SENDING_OPERATIONS:
        return web.json_response(SIMULATED_DELIVERY, content_type=JSON_CONTENT_TYPE, headers=CORS_HEADERS)
    if operation in CODE_CHECKING_OPERATIONS:
        return cognito_error(
            400, "CodeMismatchException", "Invalid verification code provided, please try again."
        )
    return _answer(status, payload, headers)  # token-authorized calls: the token names the user


def _error_code(payload: bytes, headers: dict[str, str]) -> str:
    """The error's code, from ``x-amzn-ErrorType`` or ``__type`` (either may carry a namespace)."""
    code = headers.get("x-amzn-ErrorType", "")
    if not code:
        try:
            answer = json.loads(payload or b"{}")
        except ValueError:
            return ""
        code = str(answer.get("__type", "")) if isinstance(answer, dict) else ""
    return code.split("#")[-1].split(":")[0]


def presignup_event(body: dict[str, Any], user_pool_id: str, region: str) -> dict[str, Any]:
    """The ``PreSignUp_SignUp`` trigger event Cognito builds from a SignUp request."""
    return {
        "version": "1",
        "region": region,
        "userPoolId": user_pool_id,
        "userName": body.get("Username"),
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": body.get("ClientId")},
        "triggerSource": "PreSignUp_SignUp",
        "request": {
            "userAttributes": _attributes(body.get("UserAttributes")),
            "validationData": _attributes(body.get("ValidationData")) or None,
            "clientMetadata": body.get("ClientMetadata") or {},
        },
        "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    }


def lower_case_usernames(body: dict[str, Any]) -> dict[str, Any]:
    """The request with every username lower-cased, as a case-insensitive pool compares them."""
    body = dict(body)
    if isinstance(body.get("Username"), str):
        body["Username"] = body["Username"].lower()
    for field in ("AuthParameters", "ChallengeResponses"):
        parameters = body.get(field)
        if isinstance(parameters, dict) and isinstance(parameters.get("USERNAME"), str):
            body[field] = {**parameters, "USERNAME": parameters["USERNAME"].lower()}
    return body


def _attributes(pairs: Any) -> dict[str, str]:
    if not isinstance(pairs, list):
        return {}
    return {p["Name"]: p.get("Value", "") for p in pairs if isinstance(p, dict) and "Name" in p}


def _answer(status: int, payload: bytes, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=payload, headers={**headers, **CORS_HEADERS})
