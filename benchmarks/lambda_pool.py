"""Lambda's Invoke API for the fan-out worker, running each asynchronous invocation in one of a few
worker processes, as Lambda runs invocations in parallel sandboxes.

The route handlers' boto3 Lambda client reaches it through ``AWS_ENDPOINT_URL_LAMBDA``. An
``Event`` invocation is answered 202 at once and queued; the next free worker process runs the real
``chat.handlers.fanout.handler`` on it. Each process builds its own service through ``chat.wiring``
(a warm sandbox: imported, clients built and one small fan-out done before the clock starts).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
WARMUP_FRAME = '{"type":"presence","user":"warmup","online":true}'


@dataclass(frozen=True)
class WorkerRun:
    """One invocation, as its worker process reports it."""

    worker: int
    connections: int
    cpu_s: float
    started: float
    finished: float


def _worker(number: int, env: dict[str, str], endpoint: str, jobs: Any, results: Any) -> None:
    sys.path[:0] = [str(REPO), str(REPO / "functions")]
    os.environ.update(env)
    from chat import wiring
    from chat.handlers import fanout

    from local_stack.lambdas import LambdaContext

    # Warm, as a sandbox that has served before: imports done, clients built, connections open.
    service = wiring.service_for(endpoint)
    service.notifier.send_many(
        [f"warmup-{number}-{n}" for n in range(service.notifier.workers)], WARMUP_FRAME
    )
    results.put(("ready", number))
    while (event := jobs.get()) is not None:
        context = LambdaContext(
            function_name="chat-fanout-worker",
            memory_limit_in_mb=1769,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:chat-fanout-worker",
            aws_request_id=f"worker-{number}-{time.monotonic_ns()}",
            deadline=time.monotonic() + 120,
        )
        started, cpu = time.monotonic(), time.process_time()
        answer = fanout.handler(event, context)
        run = WorkerRun(number, answer["connections"], time.process_time() - cpu, started, time.monotonic())
        results.put(("done", run))


class LambdaPool:
    """The Invoke API on 127.0.0.1 and ``processes`` warm worker processes behind it."""

    def __init__(self, processes: int, env: dict[str, str], management_endpoint: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._jobs: Any = context.Queue()
        self._results: Any = context.Queue()
        self.invocations = 0
        self._lock = threading.Lock()
        self.workers = [
            context.Process(
                target=_worker,
                args=(n, env, management_endpoint, self._jobs, self._results),
                daemon=True,
                name=f"fanout-worker-{n}",
            )
            for n in range(processes)
        ]
        for process in self.workers:
            process.start()
        for _ in self.workers:
            kind, _number = self._results.get(timeout=120)
            assert kind == "ready"
        self._server = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="invoke-api").start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def pids(self) -> list[int]:
        return [p.pid for p in self.workers if p.pid is not None]

    def collect(self, count: int, timeout: float) -> list[WorkerRun]:
        """The reports of the next ``count`` invocations to finish (fewer if ``timeout`` passes)."""
        runs: list[WorkerRun] = []
        deadline = time.monotonic() + timeout
        while len(runs) < count:
            try:
                _kind, run = self._results.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            runs.append(run)
        return runs

    def take_invocations(self) -> int:
        """How many invocations were accepted since the last call."""
        with self._lock:
            count, self.invocations = self.invocations, 0
        return count

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for _ in self.workers:
            self._jobs.put(None)
        for process in self.workers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    def __enter__(self) -> LambdaPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.invocations += 1
        self._jobs.put(event)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        pool = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if self.headers.get("X-Amz-Invocation-Type") != "Event":
                    self._reply(400, b'{"message":"only Event invocations here"}')
                    return
                pool._accept(event)
                self._reply(202, b"")

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
