"""Benchmark 5: cold start. Import time of each handler module in a fresh interpreter
(``python -X importtime``), its heaviest imports, and the peak memory of one invocation.

Beside each handler's import time, the same handler of the code before the cold-start work
(``functions/`` at ``BASELINE_REF``, taken with ``git archive``), measured in the same run and the
same interpreter, turn about with the current code: on a shared machine the load moves from
minute to minute, and only figures taken side by side compare.

Import time, the figure the goals are about: the cumulative time of the ``chat.handlers.X`` line
of ``-X importtime`` in an interpreter started with ``-S`` and a path of ``functions/`` and the
site-packages only, close to the Lambda asset's layout, after the standard modules Lambda's
runtime has imported before it imports a handler (``RUNTIME_IMPORTS``). That is what importing the
handler costs: the runtime has started its interpreter and imported those, and the asset has no
``site`` processing of a development install (its editable finder and ``.pth`` files). Each tree
is read as its asset was shipped: the current one with the checked-hash ``.pyc`` files the asset
now carries (compiled here by this interpreter, as ``infra/packaging.py`` compiles the asset with
Python 3.13), the code before without any, so its modules are compiled from source in every
interpreter, as they were on Lambda, whose asset directory is read-only; nothing is written. The
site-packages' ``.pyc`` from pip are used. Beside it,
the whole process: the sum of every top-level line of ``-X importtime`` in a normal interpreter
with ``functions/`` on ``PYTHONPATH`` (the interpreter's own start-up and ``site`` included), so
nothing is hidden. Memory: in a fresh process, ``tracemalloc``'s peak during one invocation against
moto and the double, and the growth of the resident set (``ru_maxrss``) across it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import REPO_ROOT, machine
from benchmarks.aws import MotoProcess, handler_environment
from benchmarks.management_double import ManagementDoubleProcess
from benchmarks.report import OUTPUT, Report, Table
from infra import packaging

HANDLERS = (
    "authorizer",
    "connect",
    "disconnect",
    "sendmessage",
    "sync",
    "who",
    "ping",
    "default",
    "history",
    "inbox",
    "read",
    "typing",
    "fanout",
    "presence",
    "presignup",
)
HEAVY_MS = 20.0  # imports slower than this are listed by name
FUNCTIONS = REPO_ROOT / "functions"
# main before the cold-start work: Powertools' Tracer (the X-Ray SDK) in every handler.
BASELINE_REF = "c6af1dd"
# The authorizer is on every connection's critical path; the other handlers share a looser goal.
GOAL_MS = {"authorizer": 120.0}
DEFAULT_GOAL_MS = 220.0
# What Lambda's Python runtime (the runtime interface client, awslambdaric) has imported before it
# imports a handler: bootstrap.py (importlib, json, logging, os, sys, time, traceback),
# lambda_runtime_log_utils.py (json, logging, traceback, enum's IntEnum), lambda_runtime_marshaller.py
# (decimal, math, os; and simplejson, not installed here), lambda_context.py (logging, os, sys, time),
# lambda_runtime_client.py (sys, logging, time; http.client only when it reports an error, so that one
# is the handler's to pay). Importing a handler does not pay for these again.
RUNTIME_IMPORTS = (
    "import importlib, json, logging, os, sys, time, traceback, decimal, math\nfrom enum import IntEnum\n"
)


@dataclass
class ImportTime:
    handler: str
    total_ms: float  # the handler module's own line: what importing it costs
    heaviest: list[tuple[str, float]]
    process_ms: float = 0.0  # every top-level import of a normal interpreter, start-up included


def import_times(handlers: tuple[str, ...], runs: int, trees: list[Path]) -> list[list[ImportTime]]:
    """For each handler, for each tree, the best of ``runs`` fresh interpreters. Each run goes once
    through every handler and, per handler, the trees in turn: a slow minute of a shared machine
    then falls on one run of every handler, not on all runs of one (the first run also warms the
    disk cache)."""
    best: dict[tuple[str, int], ImportTime] = {}
    for _ in range(runs):
        for handler in handlers:
            for index, tree in enumerate(trees):
                if not (tree / "chat" / "handlers" / f"{handler}.py").is_file():
                    continue  # a route the code before did not have
                measured = import_time_once(handler, tree)
                current = best.get((handler, index))
                if current is None or measured.total_ms < current.total_ms:
                    best[handler, index] = measured
    return [[best[h, i] for i in range(len(trees)) if (h, i) in best] for h in handlers]


def import_time_once(handler: str, functions: Path) -> ImportTime:
    """The handler's import as the asset runs it (after the runtime's own imports), and the whole
    process, each in a fresh interpreter."""
    site_packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    path = os.pathsep.join([str(functions), *site_packages])
    asset_like = _importtime(["-S"], path, RUNTIME_IMPORTS + f"import chat.handlers.{handler}")
    whole = _importtime([], str(functions), f"import chat.handlers.{handler}")
    measured = parse_importtime(handler, asset_like)
    measured.process_ms = parse_importtime(handler, whole).process_ms
    return measured


def _importtime(flags: list[str], path: str, code: str) -> str:
    result = subprocess.run(
        [sys.executable, *flags, "-X", "importtime", "-c", code],
        # No bytecode written, as on Lambda: a tree without .pyc is compiled anew by each interpreter.
        env={**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stderr


@contextmanager
def current_functions() -> Iterator[Path]:
    """``functions/`` as it is now, in a scratch directory, compiled as the asset is (whatever
    ``__pycache__`` the working tree happens to hold is left behind)."""
    with tempfile.TemporaryDirectory(prefix="cold-start-current-") as scratch:
        copy = Path(scratch) / "functions"
        shutil.copytree(FUNCTIONS, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        packaging.compile_bytecode(copy / packaging.PACKAGE_NAME, sys.executable, root=copy)
        yield copy


@contextmanager
def baseline_functions(ref: str = BASELINE_REF) -> Iterator[Path | None]:
    """``functions/`` as it was at ``ref``, in a scratch directory; None when git cannot give it
    (no history, as in an exported tree)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, "functions"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if archive.returncode != 0:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="cold-start-baseline-") as scratch:
        subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, timeout=60, check=True)
        yield Path(scratch) / "functions"


def parse_importtime(handler: str, stderr: str) -> ImportTime:
    """Lines are ``import time: self [us] | cumulative | name``, nested names indented by two; a
    module's line comes after those of the imports it triggered (``chat`` and ``chat.handlers``
    among them), so the handler's own line holds all that importing it cost, and the nested lines
    since the top-level line before it are its imports (not those of the runtime's modules)."""
    module = f"chat.handlers.{handler}"
    top, own, nested = 0.0, 0.0, []
    block: list[tuple[str, float]] = []  # nested lines since the last top-level one
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        micros = float(cumulative)
        if depth == 0:
            top += micros
            if name.strip() == module:
                own, nested = micros, block
            block = []
        elif depth <= 2:
            block.append((name.strip(), micros / 1000))
    heaviest = sorted({n: ms for n, ms in nested if ms >= HEAVY_MS}.items(), key=lambda x: -x[1])[:4]
    return ImportTime(handler, own / 1000, heaviest, process_ms=top / 1000)


# ---- one invocation's memory, in a fresh process -----------------------------------------------

_PROBE = r"""
import json, os, resource, sys, time, tracemalloc
sys.path[:0] = [{repo!r}, {functions!r}]
event, handler_name = json.loads(sys.argv[1]), sys.argv[2]
import importlib
handler = importlib.import_module("chat.handlers." + handler_name).handler
from local_stack.lambdas import LambdaContext
context = LambdaContext("chat-" + handler_name, 256, "arn:aws:lambda:us-east-1:123456789012:function:x",
                        "probe", time.monotonic() + 30)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
handler(event, context)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_kb": peak / 1024, "rss_before_kb": before, "rss_growth_kb": after - before}}))
"""


def events_for(handler: str) -> dict[str, Any]:
    folder = REPO_ROOT / "tests" / "events"
    message = json.loads((folder / "message.json").read_text())
    message["requestContext"]["authorizer"] = {"principalId": "alice", "username": "alice"}
    bodies = {
        "sendmessage": {"action": "sendmessage", "text": "hello"},
        "sync": {"action": "sync", "limit": 10},
        "who": {"action": "who"},
        "ping": {"action": "ping"},
        "default": {"action": "nothing"},
    }
    if handler in bodies:
        return {**message, "body": json.dumps(bodies[handler])}
    if handler in ("connect", "disconnect"):
        raw = json.loads((folder / f"{handler}.json").read_text())
        raw["requestContext"]["authorizer"] = {"principalId": "alice", "username": "alice"}
        return dict(raw)
    if handler == "fanout":
        return {
            "endpoint": "",
            "frame": '{"type":"message"}',
            "connections": [["c1=", "alice"], ["c2=", "bob"]],
        }
    return {}


def invocation_memory(handler: str, env: dict[str, str], endpoint: str) -> dict[str, float]:
    event = events_for(handler)
    if handler == "fanout":
        event["endpoint"] = endpoint
    script = _PROBE.format(repo=str(REPO_ROOT), functions=str(REPO_ROOT / "functions"))
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(event), handler],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


PROBED = ("connect", "sendmessage", "sync", "who", "ping", "default", "fanout", "disconnect")


def run(runs: int, command: str, output: Path = OUTPUT, *, handlers: tuple[str, ...] = HANDLERS) -> Report:
    with current_functions() as current, baseline_functions() as baseline:
        trees = [current] if baseline is None else [current, baseline]
        measured_pairs = import_times(handlers, runs, trees)
    times = [pair[0] for pair in measured_pairs]
    before = {pair[0].handler: pair[1] for pair in measured_pairs if len(pair) > 1}
    memory: dict[str, dict[str, float]] = {}
    with ManagementDoubleProcess() as double, MotoProcess() as moto:
        env = handler_environment(moto, double.endpoint)
        for handler in (h for h in PROBED if h in handlers):
            memory[handler] = invocation_memory(handler, env, double.endpoint)
    report = Report("cold_start", "Cold start: import time and memory per handler", machine.describe(command))
    table = Table(
        [
            "handler",
            "import (ms)",
            f"before, {BASELINE_REF} (ms)",
            "goal (ms)",
            "goal",
            "whole process (ms)",
            f"whole process before, {BASELINE_REF} (ms)",
            "heaviest imports (ms)",
            "invocation peak (KiB, tracemalloc)",
            "RSS after import (MiB)",
            "RSS growth in the invocation (KiB)",
        ]
    )
    for measured in times:
        probe = memory.get(measured.handler)
        earlier = before.get(measured.handler)
        goal = GOAL_MS.get(measured.handler, DEFAULT_GOAL_MS)
        table.add(
            measured.handler,
            measured.total_ms,
            earlier.total_ms if earlier else "-",
            goal,
            "met" if measured.total_ms <= goal else "not met",
            measured.process_ms,
            earlier.process_ms if earlier else "-",
            ", ".join(f"{name} {ms:,.0f}" for name, ms in measured.heaviest) or "-",
            probe["peak_kb"] if probe else "-",
            probe["rss_before_kb"] / 1024 if probe else "-",
            probe["rss_growth_kb"] if probe else "-",
        )
    report.tables.append((f"Fresh interpreter per handler, best of {runs}", table))
    report.notes += [
        f"Before: the same handler of `functions/` at {BASELINE_REF} (main before the cold-start work), "
        "measured in this run, each fresh interpreter taking turns with the current code's; each of the runs "
        "goes once through every handler, so a slow minute of the machine falls on one run of each handler."
        if before
        else f"Before: not measured (`git archive {BASELINE_REF}` failed: no git history here).",
        "Import (what the goals are about, before measured alike): the cumulative time of the "
        "`chat.handlers.X` line of `python -S -X importtime -c '<the runtime's imports>; import "
        "chat.handlers.X'`, with only functions/ and the site-packages on the path, as in the Lambda asset: "
        "the cost of importing the handler, without the interpreter's start-up and `site` and without the "
        "standard modules Lambda's Python runtime (awslambdaric) has imported before it imports a handler "
        "(bootstrap.py, lambda_runtime_client.py, lambda_runtime_marshaller.py, lambda_runtime_log_utils.py, "
        "lambda_context.py: importlib, json, logging, os, sys, time, traceback, enum, decimal, math; its "
        "simplejson is not installed here, and http.client it imports only to report an error), and without "
        "the development install's editable finder (the asset has none). Each tree as its asset shipped: "
        "the current one with checked-hash .pyc files (compiled here by this interpreter, as the asset is by "
        "Python 3.13), the code before with none, so its modules are compiled in every interpreter, as on "
        "Lambda, where the asset directory cannot be written to; the site-packages' .pyc are used.",
        "Whole process: the sum of every top-level line of `python -X importtime` in a normal interpreter "
        "with functions/ on PYTHONPATH, start-up, `site` and the editable finder included.",
        "Heaviest imports: from the import's own tree (-S), modules up to two levels below the handler.",
        "Invocation memory: one call against moto and the management-API double in a fresh process; the "
        "authorizer and presignup are left out (they need a signed token / a Cognito trigger event).",
        "What is left: in a route handler and the workers, botocore (most of it: its client machinery, "
        "urllib3, dateutil; the runtime ships it, and every route calls DynamoDB), Powertools' logger and "
        "metrics, asyncio and h11 for the management API; in the authorizer, Powertools' logger, http.client "
        "for the key set and rsa. Clients are built at first use, not at import.",
    ]
    report.data = {
        "imports": {t.handler: t.total_ms for t in times},
        "whole_process": {t.handler: t.process_ms for t in times},
        "goals": {t.handler: GOAL_MS.get(t.handler, DEFAULT_GOAL_MS) for t in times},
        "before": {
            "ref": BASELINE_REF,
            "imports": {h: t.total_ms for h, t in before.items()},
            "whole_process": {h: t.process_ms for h, t in before.items()},
        },
        "memory": memory,
    }
    report.write(output)
    return report


def main(*, quick: bool, output: Path, command: str) -> Report:
    if quick:
        return run(1, command, output, handlers=("authorizer", "ping", "sendmessage"))
    # Best of 5: with the baseline measured beside it, 5 x 2 x 2 fresh interpreters per handler; the
    # authorizer's goal leaves little room, and a best of 2 still varied by tens of ms here.
    return run(5, command, output)
