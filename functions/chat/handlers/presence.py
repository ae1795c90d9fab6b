"""Presence-check worker: reads the presence grace's delayed checks from SQS (an event source mapping).

Each record is one ``chat.grace.PresenceCheck``; a record that fails is reported back alone
(``batchItemFailures``), so SQS retries only it and, after its last attempt, moves it to the
dead-letter queue. A body that is not a check is logged and dropped: retrying cannot fix it.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat import wiring
from chat.grace import PresenceCheck
from chat.notifier import begin_invocation
from chat.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)


def check_one(record: SQSRecord) -> None:
    try:
        check = PresenceCheck.from_body(record.body)
    except (ValueError, KeyError, TypeError):
        logger.error("dropped a queue message that is not a presence check", message_id=record.message_id)
        return
    wiring.service_for(check.endpoint).check_presence(check)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin_invocation()  # no kept-alive connection from before a freeze is trusted
    answer = process_partial_response(
        event=event, record_handler=check_one, processor=processor, context=context
    )
    return dict(answer)
