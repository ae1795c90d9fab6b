"""The presence grace on AWS: an encrypted, TLS-only SQS queue with a dead-letter queue, feeding the
presence-check worker through an event source mapping that reports failed records one by one."""

from __future__ import annotations

from typing import Any

import pytest
from chat import config

from infra import constants, presence
from infra.stack import ChatStack
from tests.infra.conftest import logical_id, of_type, synthesize


def _queue(resources: dict[str, Any], construct: Any) -> dict[str, Any]:
    properties: dict[str, Any] = resources[logical_id(construct)]["Properties"]
    return properties


def test_the_queue_is_encrypted_and_moves_failing_checks_to_a_dead_letter_queue(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """SQS-managed encryption on both queues; after 5 receives a check goes to the dead-letter queue."""
    checks = _queue(resources, chat_stack.presence.queue)
    dead_letters = _queue(resources, chat_stack.presence.dead_letters)
    assert checks["SqsManagedSseEnabled"] is True and dead_letters["SqsManagedSseEnabled"] is True
    assert checks["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(chat_stack.presence.dead_letters), "Arn"]},
        "maxReceiveCount": presence.MAX_RECEIVES,
    }
    assert dead_letters["MessageRetentionPeriod"] == 14 * 86400


def test_visibility_timeout_is_six_times_the_workers_timeout(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """Lambda's advice for an SQS trigger: the queue hides a received batch for 6x the function timeout."""
    worker = resources[logical_id(chat_stack.functions.presence_check)]["Properties"]
    assert _queue(resources, chat_stack.presence.queue)["VisibilityTimeout"] >= 6 * worker["Timeout"]


def test_both_queues_refuse_requests_without_tls(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """Each queue's policy denies every SQS action when aws:SecureTransport is false."""
    policies = of_type(resources, "AWS::SQS::QueuePolicy").values()
    protected = set()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies_plain = any(
            s["Effect"] == "Deny"
            and s["Action"] == "sqs:*"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
        if denies_plain:
            protected |= {queue["Ref"] for queue in policy["Properties"]["Queues"]}
    assert {logical_id(chat_stack.presence.queue), logical_id(chat_stack.presence.dead_letters)} <= protected


def test_the_worker_is_triggered_by_the_queue_with_partial_batch_responses(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """One event source mapping: this queue, the presence-check worker, ReportBatchItemFailures."""
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": [logical_id(chat_stack.presence.queue), "Arn"]}
    assert properties["FunctionName"] == {"Ref": logical_id(chat_stack.functions.presence_check)}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == presence.BATCH_SIZE


def test_disconnect_and_the_worker_know_the_queue_and_the_grace(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """The functions that schedule checks get the queue's URL and the grace (15 s by default)."""
    for function in (chat_stack.functions.for_route("$disconnect"), chat_stack.functions.presence_check):
        env = resources[logical_id(function)]["Properties"]["Environment"]["Variables"]
        assert env[config.PRESENCE_QUEUE_URL] == {"Ref": logical_id(chat_stack.presence.queue)}
        assert env[config.PRESENCE_GRACE_SECONDS] == "15"


def test_the_grace_is_a_stack_setting() -> None:
    """`-c presenceGraceSeconds=0` (the old behaviour) reaches the functions; 901 is refused."""
    stack = synthesize(**{constants.PRESENCE_GRACE_CONTEXT_KEY: "0"})
    assert stack.presence_grace_seconds == 0
    with pytest.raises(ValueError, match="0 to 900"):
        synthesize(**{constants.PRESENCE_GRACE_CONTEXT_KEY: "901"})
