"""moto's server, answering one request at a time (the local stack and the tests use it).

DynamoDB applies each request to an item atomically; moto's backend does not lock, and its stock
threaded server runs requests side by side, so two concurrent ``ADD`` updates to one item can both
read the old value. Serialising requests restores the atomicity the presence and idempotency logic
relies on (and that AWS provides), while the handlers still run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _one_at_a_time(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))  # the whole response, inside the lock

    return serialized


class AtomicMotoServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        app = _one_at_a_time(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> AtomicMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
