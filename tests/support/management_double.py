"""A stand-in for API Gateway's management API over real HTTP, for the handler tests.

moto's management API accepts every connection id and never answers 410, so the tests point the
handlers at this server instead (the notifier posts with its own HTTP client over h11; the
presence probe's GET and the closer's DELETE use boto3's): it records what each connection was sent,
answers 410 GoneException for ids marked gone, and 429 LimitExceededException a chosen number of
times, in the wire shape botocore turns into its modeled exceptions. GET answers 410 for the
same gone ids (and 200 otherwise), as API Gateway's GET @connections/{id} does. A DELETE closes
(marks gone).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

STAGE = "prod"


class ManagementApiDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.throttle_remaining: dict[str, int] = {}
        self.attempts: dict[str, int] = defaultdict(int)
        self.log: list[tuple[str, str]] = []  # (connection id, frame type) in the order received
        self.deletes: list[str] = []  # DELETE @connections/{id}, in order (the id is then gone)
        self.lookups: list[str] = []  # connection ids asked about with GET, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{STAGE}"

    def start(self) -> ManagementApiDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.frames.clear()
            self.gone.clear()
            self.throttle_remaining.clear()
            self.attempts.clear()
            self.log.clear()
            self.deletes.clear()
            self.lookups.clear()

    def received(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            frames = list(self.frames[connection_id])
        return [f for f in frames if frame_type is None or f.get("type") == frame_type]

    def _answer_post(self, connection_id: str, body: bytes) -> tuple[int, str | None]:
        with self.lock:
            self.attempts[connection_id] += 1
            if connection_id in self.gone:
                return 410, "GoneException"
            if self.throttle_remaining.get(connection_id, 0) > 0:
                self.throttle_remaining[connection_id] -= 1
                return 429, "LimitExceededException"
            frame = json.loads(body)
            self.frames[connection_id].append(frame)
            self.log.append((connection_id, frame.get("type", "")))
        return 200, None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                connection_id = unquote(self.path.rsplit("/", 1)[-1])
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, error = double._answer_post(connection_id, body)
                self._reply(status, error)

            def do_GET(self) -> None:
                connection_id = unquote(self.path.rsplit("/", 1)[-1])
                with double.lock:
                    double.lookups.append(connection_id)
                    gone = connection_id in double.gone
                if gone:
                    self._reply(410, "GoneException")
                    return
                payload = json.dumps({"connectedAt": "2026-01-01T00:00:00.000Z", "identity": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_DELETE(self) -> None:
                connection_id = unquote(self.path.rsplit("/", 1)[-1])
                with double.lock:
                    double.gone.add(connection_id)
                    double.deletes.append(connection_id)
                self._reply(204, None)

            def _reply(self, status: int, error: str | None) -> None:
                payload = json.dumps({"message": error}).encode() if error else b""
                self.send_response(status)
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output readable

        return Handler
