"""Presence-check worker: reads the presence grace's delayed checks from SQS (an event source mapping).

Each record is one ``chat.grace.PresenceCheck``; a record that fails is reported back alone
(``batchItemFailures``, the mapping has ReportBatchItemFailures on), so SQS retries only it and,
after its last attempt, moves it to the dead-letter queue. A body that is not a check is logged and
dropped: retrying cannot fix it.

The loop is ours rather than Powertools' BatchProcessor: importing its batch utility loads every
event class it supports (about 45 ms of each cold start here) for what is a loop over records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat import wiring
from chat.grace import PresenceCheck
from chat.notifier import begin_invocation
from chat.observability import logger, metrics

if TYPE_CHECKING:  # a type only: importing Powertools' typing module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


def check_one(record: dict[str, Any]) -> None:
    try:
        check = PresenceCheck.from_body(record["body"])
    except (ValueError, KeyError, TypeError):
        logger.error(
            "dropped a queue message that is not a presence check", message_id=record.get("messageId")
        )
        return
    wiring.service_for(check.endpoint).check_presence(check)


def failed_records(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Check each record; the ``batchItemFailures`` entries of those that raised."""
    failures = []
    for record in records:
        try:
            check_one(record)
        except Exception:  # noqa: BLE001 - any failure: SQS delivers this record again, the others are done
            logger.exception(
                "presence check failed; the queue will deliver it again", message_id=record["messageId"]
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return failures


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin_invocation()  # no kept-alive connection from before a freeze is trusted
    return {"batchItemFailures": failed_records(event.get("Records", []))}
