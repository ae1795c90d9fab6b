"""The local stack's inspector (/_local/) in a real headless Chromium, acting on real sockets."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from websockets.exceptions import ConnectionClosed

from tests.clients.browser import WAIT_MS
from tests.clients.peers import Peer

pytestmark = pytest.mark.browser


def inspector(open_context: Any, stack: Any) -> Page:
    page = open_context().new_page()
    page.goto(f"{stack.http_url}_local/")
    expect(page.get_by_role("heading", name="Local stack inspector")).to_be_visible()
    return page


def connection_row(page: Page, user: str) -> Locator:
    row = page.locator(f'[data-testid="connection"][data-user="{user}"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    return row


def closed_by_server(peer: Peer, timeout: float = 10) -> ConnectionClosed:
    """How the server ended ``peer``'s socket (any frames before the end are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            peer.socket.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed
        except TimeoutError:
            break
    raise AssertionError(f"{peer.username}'s socket is still open")


def test_drop_closes_the_socket_and_runs_disconnect(open_context, stack, peer, new_username) -> None:
    """The list shows a connected client; Drop closes its socket (1000) and $disconnect runs."""
    alice = peer(new_username("alice"))
    page = inspector(open_context, stack)
    row = connection_row(page, alice.username)
    connection_id = row.get_attribute("data-connection-id")
    assert connection_id
    expect(row.locator("td").nth(1)).to_have_text(connection_id)

    row.get_by_test_id("drop").click()
    closed = closed_by_server(alice)
    assert closed.rcvd is not None and closed.rcvd.code == 1000
    disconnect = page.locator(
        f'[data-testid="event"][data-kind="$disconnect"][data-connection-id="{connection_id}"]'
    )
    expect(disconnect).to_have_count(1, timeout=WAIT_MS)
    expect(disconnect).to_have_attribute("data-status", "200", timeout=WAIT_MS)
    expect(page.locator(f'[data-testid="connection"][data-user="{alice.username}"]')).to_have_count(0)


def test_stale_answers_410_and_the_next_fan_out_prunes_it(open_context, stack, peer, new_username) -> None:
    """Stale cuts the socket without $disconnect; a post answers 410; the next fan-out prunes the record."""
    bob, carol = peer(new_username("bob")), peer(new_username("carol"))
    page = inspector(open_context, stack)
    row = connection_row(page, bob.username)
    connection_id = row.get_attribute("data-connection-id")
    assert connection_id

    row.get_by_test_id("stale").click()
    closed = closed_by_server(bob)
    assert closed.rcvd is None, "a stale socket is cut, not closed with a close frame"
    expect(page.locator(f'[data-testid="connection"][data-user="{bob.username}"]')).to_have_count(
        0, timeout=WAIT_MS
    )

    management = stack.management_client()
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"are you there?")
    # Its record is still there, as after a lost $disconnect. Age it past the 30 s during which a
    # 410 prunes nothing (that connection's $connect could still be running).
    dynamodb = stack.aws_client("dynamodb")
    connections_table = stack.table_names["Connections"]
    record = {"connectionId": {"S": connection_id}}
    assert "Item" in dynamodb.get_item(TableName=connections_table, Key=record)
    dynamodb.update_item(
        TableName=connections_table,
        Key=record,
        UpdateExpression="SET connectedAt = :then",
        ExpressionAttributeValues={":then": {"N": str(int(time.time()) - 3600)}},
    )

    carol.send({"action": "sendmessage", "text": "anyone still here?"})
    carol.wait_for_message("anyone still here?")
    carol.wait_for(
        lambda f: f.get("type") == "presence" and f.get("user") == bob.username and not f["online"]
    )
    assert "Item" not in dynamodb.get_item(TableName=connections_table, Key=record)
    gone_posts = page.locator(
        f'[data-testid="management-call"][data-method="POST"][data-connection-id="{connection_id}"]'
        '[data-status="410"]'
    )
    expect(gone_posts.first).to_be_visible(timeout=WAIT_MS)
    no_disconnect = page.locator(
        f'[data-testid="event"][data-kind="$disconnect"][data-connection-id="{connection_id}"]'
    )
    expect(no_disconnect).to_have_count(0)


def test_the_table_browser_pages_through_a_table(open_context, stack, peer, new_username) -> None:
    """Scanning Messages shows stored items a page at a time; the next page continues the scan."""
    dave = peer(new_username("dave"))
    for n in range(30):
        dave.send({"action": "sendmessage", "text": f"row {n}", "clientMsgId": f"row-{n}-{dave.username}"})
    for n in range(30):
        dave.wait_for(
            lambda f, n=n: f.get("type") == "ack" and f.get("clientMsgId") == f"row-{n}-{dave.username}"
        )
    page = inspector(open_context, stack)
    page.get_by_test_id("table-select").select_option("Messages")
    page.get_by_test_id("table-scan").click()
    items = page.get_by_test_id("table-item")
    expect(items).to_have_count(25, timeout=WAIT_MS)
    expect(page.get_by_test_id("table-head")).to_contain_text("feed")
    first_page = items.all_inner_texts()
    expect(page.get_by_test_id("table-next")).to_be_enabled()
    page.get_by_test_id("table-next").click()
    expect(page.get_by_test_id("table-summary")).not_to_have_text("", timeout=WAIT_MS)
    expect(items.first).not_to_have_text(first_page[0], timeout=WAIT_MS)


def test_actions_need_the_inspectors_own_origin(stack, peer, new_username) -> None:
    """A POST from another origin (any web page in the same browser) is refused and drops nothing."""
    erin = peer(new_username("erin"))
    with urllib.request.urlopen(f"{stack.http_url}_local/api/connections", timeout=10) as reply:
        listed = json.load(reply)["connections"]
    [mine] = [c for c in listed if c["user"] == erin.username]
    request = urllib.request.Request(
        f"{stack.http_url}_local/api/connections/{mine['connectionId']}/drop",
        method="POST",
        headers={"Origin": "http://evil.example"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    refused.value.close()
    erin.send({"action": "ping"})
    erin.wait_for(lambda f: f.get("type") == "pong")
