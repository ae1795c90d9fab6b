"""The presence-check queue and its Lambda trigger, as AWS runs them: an SQS queue (moto's) with a
dead-letter queue, and an event source mapping that polls it and invokes the presence-check worker
with SQS-shaped events.

The handlers send to the queue with their own boto3 client (``AWS_ENDPOINT_URL_SQS`` points it at
moto), with ``DelaySeconds``: moto keeps the message invisible that long, as SQS does. The poller
here plays Lambda's part: it receives up to 10 messages, invokes the worker with them, deletes those
not listed in the answer's ``batchItemFailures`` and leaves the rest to come back after the
visibility timeout, and to reach the dead-letter queue after ``MAX_RECEIVES`` attempts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from local_stack.lambdas import Function, LambdaRuntime

# The same numbers the CDK stack gives the queue (infra/presence.py, which needs aws_cdk to import).
VISIBILITY_TIMEOUT_S = 30
MAX_RECEIVES = 5
POLL_INTERVAL_S = 0.2

_log = logging.getLogger(__name__)
BATCH_SIZE = 10


@dataclass(frozen=True)
class Queues:
    url: str
    arn: str
    dead_letter_url: str


def create_queues(sqs: Any, *, name: str) -> Queues:
    """The queue and its dead-letter queue (a message moves there after ``MAX_RECEIVES`` receives)."""
    dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVES}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queues(url=url, arn=arn, dead_letter_url=dead_letter_url)


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping invokes a function with."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class EventSourceMapping:
    """Polls one queue and invokes one function with what it receives, until stopped."""

    def __init__(
        self, *, sqs: Any, queues: Queues, runtime: LambdaRuntime, function: Function, region: str
    ) -> None:
        self._sqs = sqs
        self._queues = queues
        self._runtime = runtime
        self._function = function
        self._region = region
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def poll_once(self) -> int:
        """Receive one batch and run the function on it; how many messages it held."""
        received = await asyncio.to_thread(
            self._sqs.receive_message,
            QueueUrl=self._queues.url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=0,  # moto answers one request at a time: never hold it in a long poll
            MessageSystemAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if messages:
            event = sqs_event(messages, queue_arn=self._queues.arn, region=self._region)
            invocation = await self._runtime.invoke(self._function, event)
            await asyncio.to_thread(
                self._delete_done, messages, invocation.answer if invocation.error is None else None
            )
        return len(messages)

    def _delete_done(self, messages: list[dict[str, Any]], answer: Any) -> None:
        if answer is None:
            return  # the invocation failed: every message comes back after the visibility timeout
        failed = {item.get("itemIdentifier") for item in (answer or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queues.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
            )

    async def _poll_forever(self) -> None:
        while True:
            try:
                if await self.poll_once():
                    continue  # more may be waiting
            except Exception:  # noqa: BLE001 - a failed poll is retried, as Lambda's poller does
                _log.warning("polling the presence-check queue failed; retrying", exc_info=True)
            await asyncio.sleep(POLL_INTERVAL_S)
