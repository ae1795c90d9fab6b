"""A stand-in for Lambda's Invoke API over real HTTP: runs the real fan-out worker handler.

moto needs Docker to run a function, so the dispatch tests point the handlers' boto3 Lambda client
here. An ``Event`` invocation is answered 202 at once and runs on a thread, as Lambda queues it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaInvokeDouble:
    def __init__(self, handler: Handler, context: Any) -> None:
        self.handler = handler
        self.context = context
        self.invocations: list[dict[str, Any]] = []
        self.refuse = False  # answer 400 instead of running the function
        self.hold = threading.Event()  # cleared: accepted invocations wait before running
        self.hold.set()
        self.running: list[threading.Thread] = []
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
        """Until every invocation accepted so far has finished."""
        for thread in list(self.running):
            thread.join(timeout=30)

    def _run(self, event: dict[str, Any]) -> None:
        self.hold.wait(timeout=30)
        self.handler(event, self.context)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if double.refuse:
                    self._reply(400, {"message": "Function not found"}, "ResourceNotFoundException")
                    return
                double.invocations.append(event)
                thread = threading.Thread(target=double._run, args=(event,))
                double.running.append(thread)
                thread.start()
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
