"""The fan-out worker runs at least once with bounded, explicit retries, and what fails every attempt
lands in an encrypted, TLS-only SQS queue with an alarm on it."""

from __future__ import annotations

from typing import Any

from infra.stack import ChatStack
from local_stack.lambdas import FANOUT_WORKER_RETRIES
from tests.infra.conftest import logical_id, of_type


def _queue_ref(chat_stack: ChatStack) -> str:
    return logical_id(chat_stack.functions.fanout_failures.queue)


def test_worker_retries_are_explicit_and_match_the_local_emulation(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """Two retries, events dropped after 15 minutes, failures to the queue; the test double's
    emulation of Lambda (local_stack.lambdas) uses the same numbers."""
    [config] = of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    assert properties["FunctionName"] == {"Ref": logical_id(chat_stack.functions.fanout_worker)}
    assert properties["Qualifier"] == "$LATEST"
    assert properties["MaximumRetryAttempts"] == FANOUT_WORKER_RETRIES.retry_attempts == 2
    assert properties["MaximumEventAgeInSeconds"] == FANOUT_WORKER_RETRIES.max_event_age_s == 900
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [_queue_ref(chat_stack), "Arn"]}}
    }


def test_the_failure_queue_is_encrypted_keeps_records_14_days_and_refuses_plain_http(
    chat_stack: ChatStack, resources: dict[str, Any]
) -> None:
    """SSE-SQS on, 14 days of retention (SQS's longest), and a queue policy denying non-TLS requests."""
    queue = resources[_queue_ref(chat_stack)]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    [policy] = [
        policy
        for policy in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": _queue_ref(chat_stack)}]
    ]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_an_alarm_fires_on_the_first_failed_chunk(chat_stack: ChatStack, resources: dict[str, Any]) -> None:
    """The alarm watches the queue's visible messages and fires at one; no data is not an alarm."""
    [alarm] = of_type(resources, "AWS::CloudWatch::Alarm").values()
    properties = alarm["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [_queue_ref(chat_stack), "QueueName"]}}
    ]
    assert properties["Statistic"] == "Maximum"
    assert (properties["Threshold"], properties["EvaluationPeriods"]) == (1, 1)
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "notBreaching"
