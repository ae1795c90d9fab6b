"""DynamoDB and Cognito from moto's server, in a process of its own (so its CPU is counted apart from
the sender's), with the stack's own tables and user pool (``local_stack.aws``), and the environment
that points the real handlers at it."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from typing import Any

from chat import wiring

from local_stack import aws


def _serve(ready: Any) -> None:
    import threading

    _serialize_scans_as_plain_json()
    server, url = aws.start_moto("127.0.0.1")
    ready.send(url)
    ready.close()
    threading.Event().wait()  # until terminated
    server.stop()


def _serialize_scans_as_plain_json() -> None:
    """moto's generic response serializer walks the service model for every attribute of every
    item: a Scan of 10,000 connection rows costs it about 4 s of CPU, where DynamoDB answers the
    same 1 MB page in a fraction of a second. A Scan's answer is DynamoDB JSON already, so
    ``json.dumps`` gives the same bytes on the wire (moto sends a handler's ``str`` answer as is)."""
    import json

    from moto.dynamodb.responses import DynamoHandler

    scan = DynamoHandler.scan

    def scan_as_json(self: DynamoHandler) -> Any:
        answer = scan(self)
        result = getattr(answer, "result", None)
        if not isinstance(result, dict):
            return answer
        items = [{name: _plain(value) for name, value in item.items()} for item in result.get("Items", [])]
        return json.dumps({**result, "Items": items})

    DynamoHandler.scan = scan_as_json  # type: ignore[method-assign]


def _plain(value: Any) -> Any:
    """An attribute value as DynamoDB JSON (moto holds most as ``DynamoType``, some as dicts)."""
    return value.to_json() if hasattr(value, "to_json") else value


class MotoProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, args=(sender,), daemon=True, name="moto")
        self.process.start()
        if not receiver.poll(60):
            self.process.kill()
            raise RuntimeError("moto's server did not start")
        self.url: str = receiver.recv()
        self.resources = aws.create_resources(self.url, name_suffix=uuid.uuid4().hex[:8])

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def table(self, logical_id: str) -> str:
        return self.resources.table_names[logical_id]

    def client(self, service: str) -> Any:
        return aws.client(service, self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)

    def __enter__(self) -> MotoProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def handler_environment(moto: MotoProcess, management_endpoint: str, **extra: str) -> dict[str, str]:
    """Every variable the handlers read, quiet logs, and the benchmark's own settings."""
    env = aws.process_environment(
        moto.resources, management_endpoint=management_endpoint, log_level="WARNING"
    )
    env.update(extra)
    return env


def apply_environment(env: dict[str, str]) -> None:
    """Point this process's handlers at ``env`` (the handlers cache settings and clients: reset them)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(env)
    wiring.reset()
