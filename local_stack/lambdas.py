"""Running the real handler functions as Lambda would: one worker thread per invocation.

Each function is imported by the dotted path the CDK stack gives Lambda (``infra/constants.py``)
and called with the event and a
context object carrying what Powertools reads from Lambda's (``function_name``,
``memory_limit_in_mb``, ``invoked_function_arn``, ``aws_request_id``,
``get_remaining_time_in_millis``). Invocations run concurrently on a thread pool, as concurrent
Lambda instances do; a call past its timeout is reported as timed out (the thread cannot be
killed, so it runs on in the background, unlike on Lambda).

``reload()`` is a deployment of new code: the handlers' packages (``chat``) are imported afresh
into new module objects, and each invocation that starts afterwards runs on them, while the ones
already running finish on the old modules they hold. A new version that does not import (a
syntax error, a missing name) changes nothing: the old modules go back into ``sys.modules``.
``run_event`` is what Lambda does with an asynchronous invocation (``InvocationType: Event``): the
documented retries of a failed event, then an invocation record for the on-failure destination.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra import sizing
from local_stack.handler_process import HandlerProcess
from local_stack.instances import WarmFirstExecutor

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class AsyncRetryPolicy:
    """What Lambda does with an asynchronous invocation whose function fails (its EventInvokeConfig).

    Lambda runs the event again up to ``retry_attempts`` times, waiting about a minute before the
    first retry and two before the second, and gives up on an event older than ``max_event_age_s``;
    then the on-failure destination gets an invocation record. Lambda's queue may also hand the same
    event over twice with no failure at all.
    """

    retry_attempts: int = 2
    max_event_age_s: float = 6 * 3600.0
    retry_delays_s: tuple[float, ...] = (60.0, 120.0)

    def delay_before_retry(self, retry: int) -> float:
        return self.retry_delays_s[min(retry, len(self.retry_delays_s)) - 1]


# The fan-out worker's, as the stack configures it.
FANOUT_WORKER_RETRIES = AsyncRetryPolicy(
    retry_attempts=sizing.FANOUT_WORKER_RETRY_ATTEMPTS,
    max_event_age_s=float(sizing.FANOUT_WORKER_MAX_EVENT_AGE_S),
)

# One connection's calls running at once: enough to run a burst side by side (its races are AWS's
# too), few enough that a flooding client leaves the other 60 threads, and most of the CPU, to
# everyone else, as separate execution environments do on AWS (see instances.py and the abuse
# benchmark in the README).
CALLS_PER_CONNECTION = 4


@dataclass(frozen=True)
class Function:
    """One deployed function: its name, handler path, memory and timeout."""

    name: str
    handler: str
    memory_mb: int = sizing.DEFAULT_MEMORY_MB
    timeout_s: float = sizing.ROUTE_TIMEOUT_S


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """How one call went: the answer or the exception, and how long it took."""

    request_id: str
    answer: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def load_handler(dotted: str) -> Handler:
    module_name, _, attribute = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def code_packages(code_root: Path) -> list[str]:
    """The top-level packages and modules of a Lambda asset's root (here: ``chat``)."""
    return sorted(
        entry.stem if entry.suffix == ".py" else entry.name
        for entry in code_root.iterdir()
        if (entry.is_dir() and (entry / "__init__.py").is_file()) or entry.suffix == ".py"
    )


def take_modules(packages: Collection[str]) -> dict[str, Any]:
    """Remove ``packages`` and their submodules from ``sys.modules``; the removed modules."""
    names = [name for name in sys.modules if name.partition(".")[0] in packages]
    return {name: sys.modules.pop(name) for name in names}


class LambdaRuntime:
    """Invokes functions on a thread pool and reports each call as an ``Invocation``.

    With ``handler_process``, each thread of the pool hands its call to a child process that runs
    the handlers (``handler_process.py``) instead of running it itself: the pool still decides
    which call runs when, and the handlers no longer share this process's interpreter lock.
    """

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        stack_name: str,
        code_root: Path | None = None,
        max_workers: int = 64,
        handler_process: bool = False,
    ) -> None:
        self._region = region
        self._account_id = account_id
        self._stack_name = stack_name
        self._pool = WarmFirstExecutor(
            max_workers=max_workers, thread_name_prefix="lambda", max_running_per_key=CALLS_PER_CONNECTION
        )
        self._handlers: dict[str, Handler] = {}
        # Every handler path asked for, in order: a reload imports them all (a broken one too).
        self._wanted: list[str] = []
        self._lock = threading.Lock()
        self._packages: list[str] = []
        self._code_root = code_root
        self._max_workers = max_workers
        self._in_process = handler_process
        self._process: HandlerProcess | None = None
        if code_root is not None:
            self._use_code_root(code_root)

    @property
    def packages(self) -> list[str]:
        return list(self._packages)

    @property
    def handler_pid(self) -> int | None:
        """The process the handlers run in, when it is not this one (and has started)."""
        return self._process.pid if self._process is not None else None

    def reload(self) -> int:
        """Import every handler's code afresh for the invocations to come; how many handlers.

        Raises what the import raised, and then the code in use stays as it was.
        """
        with self._lock:
            previous = take_modules(self._packages)
            importlib.invalidate_caches()  # new files, or ones renamed, since the last import
            try:
                handlers = {dotted: load_handler(dotted) for dotted in self._wanted}
            except BaseException:
                take_modules(self._packages)  # the half-imported new version
                sys.modules.update(previous)
                raise
            self._handlers = handlers
            if self._process is not None:
                # Here first: a broken version fails above, with its traceback, and the child keeps
                # the code it has. Under the lock, so no call starts between the two.
                self._process.reload()
            return len(handlers)

    def function(self, function_id: str, handler: str, **sizes: Any) -> Function:
        return Function(name=f"{self._stack_name}-{function_id}", handler=handler, **sizes)

    def preload(self, functions: list[Function]) -> dict[str, BaseException]:
        """Import every handler now (a cold start for all); the ones that fail, by handler path."""
        failures: dict[str, BaseException] = {}
        for function in functions:
            try:
                self._handler(function.handler)
            except Exception as exc:  # noqa: BLE001 - reported at start; each call fails the same way
                failures[function.handler] = exc
        if self._in_process:
            # The environment is the handlers' by now: the child starts with it. Its imports fail
            # as the ones above did; the start does not wait for them (the first calls do).
            self._child().preload(functions)
        return failures

    async def invoke(
        self, function: Function, event: Any, *, wait_s: float | None = None, caller: str | None = None
    ) -> Invocation:
        """Run ``function`` on a worker thread; give up waiting after its timeout (or ``wait_s``).

        ``caller`` (the gateway's connection id) queues the call behind that caller's own backlog
        only, never behind another's (see ``instances.py``)."""
        request_id = str(uuid.uuid4())
        limit = min(function.timeout_s, wait_s or function.timeout_s)
        started = time.monotonic()
        future = asyncio.wrap_future(
            self._pool.submit_for(caller, self._call, function, event, request_id, started)
        )
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), timeout=limit)
        except TimeoutError:
            return Invocation(
                request_id,
                timed_out=True,
                error=TimeoutError("Task timed out"),
                duration_ms=_ms_since(started),
            )
        except Exception as exc:  # noqa: BLE001 - the handler's exception: Lambda reports any
            return Invocation(request_id, error=exc, duration_ms=_ms_since(started))
        return Invocation(request_id, answer=answer, duration_ms=_ms_since(started))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.close()

    def _call(self, function: Function, event: Any, request_id: str, started: float) -> Any:
        if self._in_process:
            return self._child().call(function, event, request_id, started)
        return self.run(function, event, request_id, started)

    def _child(self) -> HandlerProcess:
        with self._lock:
            if self._process is None:
                self._process = HandlerProcess(
                    region=self._region,
                    account_id=self._account_id,
                    code_root=self._code_root,
                    max_workers=self._max_workers,
                )
            return self._process

    def run(self, function: Function, event: Any, request_id: str, started: float) -> Any:
        """One call of ``function``, here, on the calling thread: what a worker thread runs."""
        context = LambdaContext(
            function_name=function.name,
            memory_limit_in_mb=function.memory_mb,
            invoked_function_arn=(
                f"arn:aws:lambda:{self._region}:{self._account_id}:function:{function.name}"
            ),
            aws_request_id=request_id,
            deadline=started + function.timeout_s,
            log_group_name=f"/aws/lambda/{function.name}",
        )
        return self._handler(function.handler)(event, context)

    def _handler(self, dotted: str) -> Handler:
        # Under the lock: a call gets its function from one version of the code, whole.
        with self._lock:
            if dotted not in self._wanted:
                self._wanted.append(dotted)
            if dotted not in self._handlers:
                self._handlers[dotted] = load_handler(dotted)
            return self._handlers[dotted]

    def _use_code_root(self, code_root: Path) -> None:
        """Import the handlers from ``code_root`` (the asset's root, as /var/task on Lambda)."""
        root = code_root.resolve()
        self._packages = code_packages(root)
        if all(_imported_from(package, root) for package in self._packages):
            return  # the project's own functions/, installed with it
        # Another copy of the asset (tests edit one while the stack runs): it goes first on the
        # path, and what was imported from elsewhere (infra reads chat.config's names) is dropped.
        sys.path.insert(0, str(root))
        take_modules(self._packages)


def _imported_from(package: str, root: Path) -> bool:
    spec = importlib.util.find_spec(package)
    origin = spec.origin if spec is not None else None
    return origin is not None and Path(origin).resolve().is_relative_to(root)


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def run_event(
    attempt: Callable[[], Any],
    event: Any,
    *,
    policy: AsyncRetryPolicy,
    function_arn: str,
    request_id: str,
    on_failure: Callable[[dict[str, Any]], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Run one asynchronous invocation as Lambda does: ``attempt()`` until it returns, at most
    1 + ``policy.retry_attempts`` times, the policy's waits in between; after the last failure, or
    when the next attempt would come after ``max_event_age_s``, ``on_failure`` gets the invocation
    record Lambda sends to an on-failure destination. Returns that record, or None on success."""
    accepted = clock()
    attempts = 0
    while True:
        attempts += 1
        try:
            attempt()
            return None
        except Exception as exc:  # noqa: BLE001 - any error is a function error to Lambda
            error = exc
        if attempts > policy.retry_attempts:
            condition = "RetriesExhausted"
            break
        delay = policy.delay_before_retry(attempts)
        if clock() + delay - accepted > policy.max_event_age_s:
            condition = "EventAgeExceeded"
            break
        sleep(delay)
    record = failure_record(
        event, error, condition=condition, attempts=attempts, function_arn=function_arn, request_id=request_id
    )
    on_failure(record)
    return record


def failure_record(
    event: Any, error: BaseException, *, condition: str, attempts: int, function_arn: str, request_id: str
) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination (version 1.0)."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        },
    }
