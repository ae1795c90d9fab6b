"""``python -m mutation [MODULE ...]`` (``make mutate``): how many mutants of the pure core the tests kill.

cosmic-ray changes one thing at a time in a module (an operator, a constant, a comparison), runs
that module's tests, and counts the mutant killed when a test fails. Each module runs in a copy of
the tracked files under ``build/mutation/``, because cosmic-ray edits the files it mutates: an
interrupted run must never leave a mutant in the working tree.

The tests used are the fast ones of the pure core (no moto, no sockets, ``--noconftest``, no
pytest plugins but pytest-timeout, whose setting pyproject.toml holds), so one mutant costs one
short pytest run, most of it importing. ``--workers`` such runs go side by side, each in a copy
of its own (cosmic-ray's HTTP workers on loopback ports). Prints, per module, killed / total and
the surviving mutants' diffs; exits 1 when a module is below the goal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
GOAL = 0.95
TIMEOUT_PER_MUTANT_S = 60.0
# Mutants no test could tell from the original, so not worth running:
# - the only ``|`` in these modules joins types in annotations, which ``from __future__ import
#   annotations`` never evaluates;
# - ``is`` turned into ``==`` (``is not`` into ``!=``): every ``is`` here compares with None or an
#   enum member, and for those equality is identity.
EXCLUDED_OPERATORS = [
    "core/ReplaceBinaryOperator_BitOr_.*",
    "core/ReplaceComparisonOperator_Is_Eq",
    "core/ReplaceComparisonOperator_IsNot_NotEq",
]
# Each module of the pure core and the tests that state its rules.
MODULE_TESTS = {
    "functions/chat/cursor.py": ["tests/functions/test_cursor.py"],
    "functions/chat/protocol.py": [
        "tests/functions/test_protocol.py",
        "tests/functions/test_protocol_conversations.py",
    ],
    "functions/chat/service.py": ["tests/functions/test_service.py"],
}
# The tests need no plugin: loading none but pytest-timeout halves the cost of a mutant.
TEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
WORKER_START_TIMEOUT_S = 120.0
WORKER_START_ATTEMPTS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULE_TESTS)}")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="mutants tested at once (default: one per core)",
    )
    args = parser.parse_args(argv)
    if unknown := set(args.modules) - set(MODULE_TESTS):
        parser.error(f"no tests are set for {', '.join(sorted(unknown))}")
    below_goal = 0
    for module in args.modules or list(MODULE_TESTS):
        killed, total, survivors = run_module(module, workers=max(1, args.workers))
        share = killed / total if total else 1.0
        print(f"{module}: {killed} of {total} mutants killed ({share:.0%}; goal {GOAL:.0%})")
        for survivor in survivors:
            print(survivor)
        below_goal += share < GOAL
    return 1 if below_goal else 0


def run_module(module: str, *, workers: int = 1) -> tuple[int, int, list[str]]:
    """Mutate ``module`` in fresh copies of the tree; (killed, total, surviving diffs)."""
    tree = WORK / Path(module).stem
    copy_tracked_files(tree)
    config, session = tree / "cosmic-ray.toml", tree / "session.sqlite"
    tools = Path(sys.executable).parent
    env = {**os.environ, **TEST_ENV}
    with _http_workers(tree, workers, env) as urls:
        config.write_text(cosmic_ray_config(module, MODULE_TESTS[module], urls))
        steps = [
            [tools / "cosmic-ray", "init", config, session],
            [tools / "cr-filter-operators", session, config],
            [tools / "cosmic-ray", "exec", config, session],
        ]
        for step in steps:
            subprocess.run([str(part) for part in step], cwd=tree, check=True, env=env)  # noqa: S603
    dump_command = [str(tools / "cosmic-ray"), "dump", str(session)]
    dump = subprocess.run(dump_command, cwd=tree, check=True, capture_output=True, text=True).stdout  # noqa: S603
    results = [json.loads(line) for line in dump.splitlines() if line.strip()]
    done = [(item, result) for item, result in results if result and result.get("test_outcome")]
    survivors = [_diff(item, result) for item, result in done if result["test_outcome"] == "survived"]
    return len(done) - len(survivors), len(done), survivors


def _diff(item: dict[str, object], result: dict[str, object]) -> str:
    mutations = item.get("mutations") or [{}]
    first = mutations[0] if isinstance(mutations, list) else {}
    where = f"{first.get('module_path')}:{first.get('start_pos')} {first.get('operator_name')}"
    return f"  survived: {where}\n{result.get('diff', '')}"


@contextlib.contextmanager
def _http_workers(tree: Path, count: int, env: dict[str, str]) -> Iterator[list[str]]:
    """With more than one worker: that many cosmic-ray HTTP workers, each mutating a copy of the
    tree of its own, listening on free loopback ports; their URLs. One worker: none (local runs)."""
    if count <= 1:
        yield []
        return
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for number in range(count):
            copy = tree.with_name(f"{tree.name}-worker{number}")
            copy_tracked_files(copy)
            port = _start_worker(copy, env, processes)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _start_worker(copy: Path, env: dict[str, str], processes: list[subprocess.Popen[bytes]]) -> int:
    """Start a cosmic-ray HTTP worker in ``copy`` (added to ``processes``); the port it listens on.

    The port is free when chosen but may be taken before the worker binds it (other programs on
    the machine pick free ports too): a worker that exits without listening is started again on
    another port."""
    command = [str(Path(sys.executable).parent / "cosmic-ray"), "http-worker", "--port"]
    for _ in range(WORKER_START_ATTEMPTS):
        port = _free_port()
        process = subprocess.Popen([*command, str(port)], cwd=copy, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
        processes.append(process)
        if _wait_for_port(port, process):
            return port
    raise RuntimeError(f"no cosmic-ray worker started listening in {WORKER_START_ATTEMPTS} attempts")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> bool:
    """True once ``port`` accepts connections; False when ``process`` exits first."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    raise RuntimeError(f"a cosmic-ray worker did not start listening on port {port}")


def copy_tracked_files(tree: Path) -> None:
    """The files git tracks (with their working-tree content) into ``tree``, fresh."""
    shutil.rmtree(tree, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as every developer has it
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = tree / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def cosmic_ray_config(module: str, tests: list[str], worker_urls: list[str] | None = None) -> str:
    """A cosmic-ray session for one module: its fast tests, no conftest (no moto, no sockets); run
    here, or by the HTTP workers at ``worker_urls``."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "pytest_timeout"]
    command += ["--noconftest", "-o", "addopts=", *tests]
    distributor = ['name = "local"']
    if worker_urls:
        urls = f"worker-urls = {json.dumps(worker_urls)}"
        distributor = ['name = "http"', "", "[cosmic-ray.distributor.http]", urls]
    return "\n".join(
        [
            "[cosmic-ray]",
            f"module-path = {json.dumps(module)}",
            f"timeout = {TIMEOUT_PER_MUTANT_S}",
            "excluded-modules = []",
            f"test-command = {json.dumps(' '.join(command))}",
            "",
            "[cosmic-ray.distributor]",
            *distributor,
            "",
            "[cosmic-ray.filters.operators-filter]",
            f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
