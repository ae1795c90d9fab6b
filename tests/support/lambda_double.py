"""A stand-in for Lambda's Invoke API over real HTTP: runs the real fan-out worker handler.

moto needs Docker to run a function, so the dispatch tests point the handlers' boto3 Lambda client
here. An ``Event`` invocation is answered 202 at once and runs on a thread, as Lambda queues it, with
Lambda's handling of asynchronous invocations (``local_stack.lambdas.run_event``): a failed event is
run again as the function's retry policy says, then its invocation record goes to ``on_failure``
(``SqsDestination`` sends it to a queue, as the stack's on-failure destination does). ``deliveries``
runs every accepted event that many times, as Lambda's queue now and then does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_stack.lambdas import FANOUT_WORKER_RETRIES, AsyncRetryPolicy, run_event

Handler = Callable[[dict[str, Any], Any], Any]
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:chat-fanout-worker"
# The worker's own policy with Lambda's minutes of waiting shrunk to milliseconds.
FAST_RETRIES = replace(FANOUT_WORKER_RETRIES, retry_delays_s=(0.01, 0.02))


class SqsDestination:
    """An on-failure destination: each invocation record becomes one message on an SQS queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def __call__(self, record: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(record))

    def records(self) -> list[dict[str, Any]]:
        """Every record on the queue now (received and deleted)."""
        records = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                records.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return records


class LambdaInvokeDouble:
    def __init__(
        self,
        handler: Handler,
        context: Any,
        *,
        policy: AsyncRetryPolicy = FAST_RETRIES,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        deliveries: int = 1,
    ) -> None:
        self.handler = handler
        self.context = context
        self.policy = policy
        self.on_failure = on_failure or (lambda record: None)
        self.deliveries = deliveries
        self.invocations: list[dict[str, Any]] = []  # accepted events, once each
        self.attempts = 0  # handler calls, retries and repeated deliveries included
        self.failed: list[dict[str, Any]] = []  # invocation records sent to on_failure
        self.refuse = False  # answer 400 instead of running the function
        self.hold = threading.Event()  # cleared: accepted invocations wait before running
        self.hold.set()
        self.running: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self) -> None:
        """Until every invocation accepted so far has finished (its retries included)."""
        for thread in list(self.running):
            thread.join(timeout=30)

    def accept(self, event: dict[str, Any]) -> None:
        """Queue one asynchronous invocation, as the Invoke API does for ``InvocationType: Event``."""
        self.invocations.append(event)
        for _ in range(self.deliveries):
            thread = threading.Thread(target=self._run, args=(event, str(uuid.uuid4())))
            self.running.append(thread)
            thread.start()

    def _run(self, event: dict[str, Any], request_id: str) -> None:
        self.hold.wait(timeout=30)
        run_event(
            lambda: self._attempt(event),
            event,
            policy=self.policy,
            function_arn=FUNCTION_ARN,
            request_id=request_id,
            on_failure=self._failed,
        )

    def _attempt(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.attempts += 1
        # Each attempt gets its own copy, as each one is deserialized from Lambda's queue afresh.
        return self.handler(json.loads(json.dumps(event)), self.context)

    def _failed(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.failed.append(record)
        self.on_failure(record)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if double.refuse:
                    self._reply(400, {"message": "Function not found"}, "ResourceNotFoundException")
                    return
                double.accept(event)
                self._reply(202, None, None)

            def _reply(self, status: int, body: dict[str, Any] | None, error: str | None) -> None:
                payload = json.dumps(body).encode() if body else b""
                self.send_response(status)
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
