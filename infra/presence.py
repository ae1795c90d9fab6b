"""The presence grace's delayed checks: an SQS queue with a dead-letter queue, and the trigger
(an event source mapping) that runs the presence-check worker on what the queue delivers.

``$disconnect`` sends each check with a per-message ``DelaySeconds`` (0 to 900): SQS keeps it
invisible that long, then the mapping hands it to the worker. SQS delivers at least once; the worker
decides from the state it reads then, so a late or repeated check does no harm. A check that keeps
failing moves to the dead-letter queue after ``MAX_RECEIVES`` attempts and is kept 14 days.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import sizing
from infra.queues import private_queue

WORKER_TIMEOUT = Duration.seconds(sizing.PRESENCE_CHECK_TIMEOUT_S)
# Lambda's advice for an SQS trigger: a visibility timeout of at least six times the function's.
VISIBILITY_TIMEOUT = Duration.seconds(6 * sizing.PRESENCE_CHECK_TIMEOUT_S)
MAX_RECEIVES = 5
BATCH_SIZE = 10
# Longer than any check can wait (15 min of delay plus the retries' visibility timeouts).
RETENTION = Duration.hours(4)
DEAD_LETTER_RETENTION = Duration.days(14)


class PresenceQueue(Construct):
    """The queue of delayed presence checks and its dead-letter queue: encrypted, TLS only."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = private_queue(self, "DeadLetters", retention=DEAD_LETTER_RETENTION)
        self.queue = private_queue(
            self,
            "Checks",
            retention=RETENTION,
            visibility_timeout=VISIBILITY_TIMEOUT,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVES, queue=self.dead_letters),
        )

    def trigger(self, worker: lambda_.IFunction) -> None:
        """Run ``worker`` on the queue's messages, reporting failed records one by one."""
        worker.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=BATCH_SIZE, report_batch_item_failures=True)
        )
