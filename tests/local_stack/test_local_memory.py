"""The local stack's memory stays flat as messages are stored: a few hundred sends over a real
socket, measured as the resident memory of the stack's processes."""

from __future__ import annotations

import uuid

import pytest
from chat import config

from local_stack.testing import running_stack
from tests.support.chat_client import ChatClient

pytestmark = pytest.mark.slow
WARM_UP_SENDS = 60
MEASURED_SENDS = 300
# Before the fix every stored message cost about the size of the whole Messages table (MBs).
ALLOWED_GROWTH_KIB = 4 * 1024


def send_and_wait(client: ChatClient, count: int) -> None:
    for i in range(count):
        client_msg_id = f"m-{uuid.uuid4().hex[:12]}"
        client.send(
            {"action": "sendmessage", "text": f"message {i} " + "x" * 200, "clientMsgId": client_msg_id}
        )
        client.wait_type("ack", clientMsgId=client_msg_id)
    client.frames.clear()


def test_memory_stays_flat_over_hundreds_of_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 stored messages grow the stack's resident memory (stack and moto processes) by under 4 MiB."""
    for name, value in config.budgets_off().items():  # one sender, faster than a person
        monkeypatch.setenv(name, value)
    with running_stack() as stack:
        client = ChatClient.connect(stack, stack.create_user("talker"))
        send_and_wait(client, WARM_UP_SENDS)  # clients, pools and caches settle first
        before = stack.resident_memory_kib()
        send_and_wait(client, MEASURED_SENDS)
        after = stack.resident_memory_kib()
        client.close()
    assert after - before < ALLOWED_GROWTH_KIB, f"grew by {after - before} KiB over {MEASURED_SENDS} sends"
