"""The running local stack with the real handlers: events, handshake, limits, management API,
Cognito endpoint, /config.json and the web client's files, all over real sockets."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.exceptions import ClientError
from local_stack_client import close_frame_after_frames, connection_id_of, events_of
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local_stack import REPO_ROOT
from local_stack.testing import RunningStack, User
from tests.support.chat_client import ChatClient, OpenClient

MODELS = {
    "CONNECT": APIGatewayWebSocketConnectEventModel,
    "MESSAGE": APIGatewayWebSocketMessageEventModel,
    "DISCONNECT": APIGatewayWebSocketDisconnectEventModel,
}
AWS_ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")


@pytest.fixture(scope="module")
def alice(stack: RunningStack) -> User:
    return stack.create_user("alice")


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def closed_code(client: ChatClient) -> int:
    return close_frame_after_frames(client.socket).code


# -- events


def test_every_event_validates_against_powertools_models(stack: RunningStack, alice: User) -> None:
    """$connect, message and $disconnect events parse with Powertools' API Gateway WebSocket models."""
    client = ChatClient.connect(stack, alice)
    for body in ['{"action":"ping"}', "ping", '{"action":"who"}', '{"action":"nope"}', "not json"]:
        client.send(body)
    client.wait_type("who")
    client.drain()
    client.close()
    connection_id = connection_id_of(stack, alice.username)
    recorded = events_of(stack, connection_id, wait_for_kind="$disconnect")
    event_types = []
    for entry in recorded:
        event = entry["event"]
        if entry["kind"] == "authorizer":
            assert event["type"] == "REQUEST"
            assert re.fullmatch(
                r"arn:aws:execute-api:us-east-1:\d{12}:[a-z0-9]{10}/local/\$connect", event["methodArn"]
            )
            assert event["queryStringParameters"]["token"] == alice.access_token
            continue
        event_type = event["requestContext"]["eventType"]
        parsed = MODELS[event_type].model_validate(event)
        assert parsed.request_context.connection_id == connection_id
        event_types.append(event_type)
    assert event_types == ["CONNECT"] + ["MESSAGE"] * 5 + ["DISCONNECT"]


def test_connect_event_carries_handshake_and_identity(stack: RunningStack, alice: User) -> None:
    """$connect has the handshake's headers and query string; every event has the authorizer's username."""
    with connect(stack.connect_url(alice.access_token), user_agent_header="tests/1.0"):
        pass
    connection_id = connection_id_of(stack, alice.username)
    recorded = events_of(stack, connection_id, wait_for_kind="$disconnect")
    connect_event = next(e["event"] for e in recorded if e["kind"] == "$connect")
    assert connect_event["headers"]["User-Agent"] == "tests/1.0"
    assert connect_event["multiValueHeaders"]["X-Forwarded-For"] == ["127.0.0.1"]
    assert connect_event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "tests/1.0"}
    assert AWS_ID.fullmatch(connection_id)
    for entry in recorded[1:]:
        assert entry["event"]["requestContext"]["authorizer"]["username"] == alice.username
        assert entry["event"]["requestContext"]["authorizer"]["principalId"] == alice.username


@pytest.mark.parametrize(
    ("body", "route"),
    [
        ('{"action":"sendmessage","text":"routing test"}', "sendmessage"),
        ('{"action":"sync","limit":1}', "sync"),
        ('{"action":"who"}', "who"),
        ('{"action":"ping"}', "ping"),
        ("ping", "$default"),
        ("not json", "$default"),
        ('{"action":"nope"}', "$default"),
        ('{"action":"$connect"}', "$default"),
        ('["action","who"]', "$default"),
        ('{"text":"no action"}', "$default"),
    ],
)
def test_route_selection_on_action(
    stack: RunningStack, open_client: OpenClient, alice: User, body: str, route: str
) -> None:
    """``$request.body.action`` picks the route; anything else goes to $default."""
    client = open_client(alice)
    client.send(body)
    client.drain()
    connection_id = connection_id_of(stack, alice.username)
    messages = [
        e for e in events_of(stack, connection_id) if e["event"]["requestContext"]["eventType"] == "MESSAGE"
    ]
    assert [(m["kind"], m["event"]["body"]) for m in messages] == [(route, body)]
    assert messages[0]["event"]["isBase64Encoded"] is False


# -- handshake


def handshake_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=30)
    return refused.value.response.status_code


def test_no_token_is_401(stack: RunningStack) -> None:
    """Without ``?token=`` API Gateway answers 401 before any authorizer runs."""
    assert handshake_status(stack.websocket_url) == 401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6ImV2ZSJ9."])
def test_bad_token_is_refused(stack: RunningStack, token: str) -> None:
    """A token the authorizer rejects refuses the handshake (403 for a Deny)."""
    assert handshake_status(stack.connect_url(token)) in (401, 403)


def test_id_token_is_refused(stack: RunningStack, alice: User) -> None:
    """An ID token is not an access token: refused at the handshake."""
    assert handshake_status(stack.connect_url(alice.id_token)) == 403


# -- limits


def test_frame_over_32_kb_closes_with_1009(stack: RunningStack, alice: User) -> None:
    """One frame over 32 KB closes the socket with 1009, and $disconnect reports it."""
    client = ChatClient.connect(stack, alice)
    client.send(json.dumps({"action": "sendmessage", "text": "x" * (33 * 1024)}))
    assert closed_code(client) == 1009
    recorded = events_of(stack, connection_id_of(stack, alice.username), wait_for_kind="$disconnect")
    assert recorded[-1]["event"]["requestContext"]["disconnectStatusCode"] == 1009


def test_message_over_128_kb_in_small_frames_closes_with_1009(stack: RunningStack, alice: User) -> None:
    """Fragments under 32 KB adding up to over 128 KB still close the socket with 1009."""
    client = ChatClient.connect(stack, alice)
    client.socket.send(iter(["y" * (30 * 1024)] * 5))
    assert closed_code(client) == 1009


def test_fragmented_message_under_the_limits_is_one_message(stack: RunningStack, alice: User) -> None:
    """A message sent in fragments reaches its route whole."""
    client = ChatClient.connect(stack, alice)
    client.socket.send(iter(['{"action":', '"ping"}']))
    assert client.wait_type("pong")
    client.close()


# -- management API


def test_management_post_get_delete(stack: RunningStack, open_client: OpenClient, alice: User) -> None:
    """POST reaches the client as text, GET describes the connection, DELETE closes it ($disconnect runs)."""
    client = open_client(alice)
    connection_id = connection_id_of(stack, alice.username)
    api = stack.management_client()
    api.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"hello"}')
    assert client.wait_type("hello")
    described = api.get_connection(ConnectionId=connection_id)
    assert isinstance(described["ConnectedAt"], datetime)
    assert described["LastActiveAt"] >= described["ConnectedAt"]
    assert described["Identity"]["SourceIp"] == "127.0.0.1"
    assert described["Identity"]["UserAgent"]
    api.delete_connection(ConnectionId=connection_id)
    assert close_frame_after_frames(client.socket).code == 1000
    assert events_of(stack, connection_id, wait_for_kind="$disconnect")[-1]["kind"] == "$disconnect"
    with pytest.raises(api.exceptions.GoneException):
        api.get_connection(ConnectionId=connection_id)


def test_management_gone_for_unknown_and_closed_connections(stack: RunningStack, alice: User) -> None:
    """410 GoneException for an id never seen and for a closed connection, on every verb."""
    api = stack.management_client()
    unknown = base64.urlsafe_b64encode(b"\x00" * 11).decode()
    for call in (
        lambda cid: api.post_to_connection(ConnectionId=cid, Data=b"x"),
        lambda cid: api.get_connection(ConnectionId=cid),
        lambda cid: api.delete_connection(ConnectionId=cid),
    ):
        with pytest.raises(api.exceptions.GoneException):
            call(unknown)
    client = ChatClient.connect(stack, alice)
    connection_id = connection_id_of(stack, alice.username)
    client.close()
    events_of(stack, connection_id, wait_for_kind="$disconnect")
    with pytest.raises(api.exceptions.GoneException) as gone:
        api.post_to_connection(ConnectionId=connection_id, Data=b"x")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_management_payload_over_128_kb_is_413(
    stack: RunningStack, open_client: OpenClient, alice: User
) -> None:
    """Data over 128 KB is PayloadTooLargeException; exactly 128 KB is sent."""
    client = open_client(alice)
    connection_id = connection_id_of(stack, alice.username)
    api = stack.management_client()
    with pytest.raises(api.exceptions.PayloadTooLargeException):
        api.post_to_connection(ConnectionId=connection_id, Data=padded_frame(128 * 1024 + 1))
    api.post_to_connection(ConnectionId=connection_id, Data=padded_frame(128 * 1024))
    assert len(json.dumps(client.wait_type("big"), separators=(",", ":"))) == 128 * 1024


def padded_frame(size: int) -> bytes:
    """A JSON frame of exactly ``size`` bytes."""
    empty = len(b'{"type":"big","pad":""}')
    return json.dumps({"type": "big", "pad": "z" * (size - empty)}, separators=(",", ":")).encode()


# -- Cognito endpoint


def test_sign_up_is_auto_confirmed(stack: RunningStack) -> None:
    """SignUp through the endpoint runs the trigger and confirms the user, as the deployed pool does."""
    user = stack.create_user("newcomer")
    admin = stack.aws_client("cognito-idp")
    status = admin.admin_get_user(UserPoolId=stack.config["userPoolId"], Username=user.username)["UserStatus"]
    assert status == "CONFIRMED"


@pytest.mark.parametrize("username", ["ab", "has space", "x" * 33, "émile", "semi;colon"])
def test_bad_usernames_are_refused_by_the_trigger(stack: RunningStack, username: str) -> None:
    """The pre-sign-up trigger's refusal is Cognito's UserLambdaValidationException."""
    cognito = stack.cognito_client()
    with pytest.raises(ClientError) as refused:
        cognito.sign_up(ClientId=stack.config["userPoolClientId"], Username=username, Password="password123")
    assert refused.value.response["Error"]["Code"] == "UserLambdaValidationException"
    assert refused.value.response["Error"]["Message"].startswith("PreSignUp failed with error ")


def test_usernames_are_case_insensitive(stack: RunningStack) -> None:
    """A username signs in in any case, and cannot be taken again in another case."""
    user = stack.create_user("MiXeD")
    assert user.username == user.username.lower()
    assert stack.sign_in(user.username.upper()).access_token
    with pytest.raises(stack.cognito_client().exceptions.UsernameExistsException):
        stack.cognito_client().sign_up(
            ClientId=stack.config["userPoolClientId"], Username=user.username.upper(), Password="password123"
        )


def test_cognito_endpoint_answers_cors_preflight(stack: RunningStack) -> None:
    """Browsers on the web client's origin may call the Cognito endpoint."""
    request = urllib.request.Request(
        stack.cognito_url,
        method="OPTIONS",
        headers={
            "Origin": stack.http_url.rstrip("/"),
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target,x-amz-user-agent",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        allowed = reply.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-amz-target", "x-amz-user-agent"} <= {h.strip() for h in allowed.split(",")}


# -- HTTP on the WebSocket port


def test_config_json(stack: RunningStack) -> None:
    """/config.json has exactly the fields docs/protocol.md lists, pointing at this stack."""
    status, headers, body = http_get(stack.http_url + "config.json")
    config = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert set(config) == {"websocketUrl", "region", "userPoolId", "userPoolClientId", "cognitoEndpoint"}
    assert config["websocketUrl"] == stack.websocket_url and config["websocketUrl"].endswith("/local")
    assert config["region"] == "us-east-1"
    assert config["userPoolId"].startswith("us-east-1_")
    assert config["cognitoEndpoint"] == stack.cognito_url


def test_web_client_is_served(stack: RunningStack) -> None:
    """/ is clients/web/index.html, as HTML."""
    index = REPO_ROOT / "clients" / "web" / "index.html"
    if not index.exists():
        pytest.skip("clients/web/index.html is not there yet")
    status, headers, body = http_get(stack.http_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body == index.read_bytes()


def test_missing_file_and_traversal_are_404(stack: RunningStack) -> None:
    """Unknown paths are 404, and so is any way out of clients/web."""
    assert http_get(stack.http_url + "no-such-file.js")[0] == 404
    assert http_get(stack.http_url + "%2e%2e/pyproject.toml")[0] == 404


# -- console


def test_console_has_one_line_per_call(stack: RunningStack, alice: User) -> None:
    """The console names user, connection, route, status and duration of every call."""
    client = ChatClient.connect(stack, alice)
    client.send('{"action":"who"}')
    client.wait_type("who")
    client.close()
    connection_id = connection_id_of(stack, alice.username)
    deadline = time.monotonic() + 5
    # The line is printed once $disconnect has answered.
    while len(lines := [line for line in stack.log().splitlines() if connection_id in line]) < 3:
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    assert [line.split()[3] for line in lines] == ["$connect", "who", "$disconnect"]
    assert all(
        alice.username in line and " 200 " in line and line.rstrip().split()[-1] in ("ms", "1000")
        for line in lines
    )
