"""``python -m mutation [MODULE ...]`` (``make mutate``): how many mutants of the pure core the tests kill.

cosmic-ray changes one thing at a time in a module (an operator, a constant, a comparison), runs
that module's tests, and counts the mutant killed when a test fails. Each module runs in a copy of
the tracked files under ``build/mutation/``, because cosmic-ray edits the files it mutates: an
interrupted run must never leave a mutant in the working tree.

The tests used are the fast ones of the pure core (no moto, no sockets, ``--noconftest``), so one
mutant costs one short pytest run. Prints, per module, killed / total and the surviving mutants'
diffs; exits 1 when a module is below the goal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
GOAL = 0.95
TIMEOUT_PER_MUTANT_S = 60.0
# The only ``|`` in these modules joins types in annotations, which ``from __future__ import
# annotations`` never evaluates: changing it changes nothing a test could see.
EXCLUDED_OPERATORS = ["core/ReplaceBinaryOperator_BitOr_.*"]
# Each module of the pure core and the tests that state its rules.
MODULE_TESTS = {
    "functions/chat/cursor.py": ["tests/functions/test_cursor.py"],
    "functions/chat/protocol.py": [
        "tests/functions/test_protocol.py",
        "tests/functions/test_protocol_conversations.py",
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULE_TESTS)}")
    args = parser.parse_args(argv)
    if unknown := set(args.modules) - set(MODULE_TESTS):
        parser.error(f"no tests are set for {', '.join(sorted(unknown))}")
    below_goal = 0
    for module in args.modules or list(MODULE_TESTS):
        killed, total, survivors = run_module(module)
        share = killed / total if total else 1.0
        print(f"{module}: {killed} of {total} mutants killed ({share:.0%}; goal {GOAL:.0%})")
        for survivor in survivors:
            print(survivor)
        below_goal += share < GOAL
    return 1 if below_goal else 0


def run_module(module: str) -> tuple[int, int, list[str]]:
    """Mutate ``module`` in a fresh copy of the tree; (killed, total, surviving diffs)."""
    tree = WORK / Path(module).stem
    copy_tracked_files(tree)
    config, session = tree / "cosmic-ray.toml", tree / "session.sqlite"
    config.write_text(cosmic_ray_config(module, MODULE_TESTS[module]))
    tools = Path(sys.executable).parent
    steps = [
        [tools / "cosmic-ray", "init", config, session],
        [tools / "cr-filter-operators", session, config],
        [tools / "cosmic-ray", "exec", config, session],
    ]
    for step in steps:
        subprocess.run([str(part) for part in step], cwd=tree, check=True)  # noqa: S603
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


def cosmic_ray_config(module: str, tests: list[str]) -> str:
    """A cosmic-ray session for one module: its fast tests, no conftest (no moto, no sockets)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--noconftest"]
    command += ["-o", "addopts=", *tests]
    return "\n".join(
        [
            "[cosmic-ray]",
            f"module-path = {json.dumps(module)}",
            f"timeout = {TIMEOUT_PER_MUTANT_S}",
            "excluded-modules = []",
            f"test-command = {json.dumps(' '.join(command))}",
            "",
            "[cosmic-ray.distributor]",
            'name = "local"',
            "",
            "[cosmic-ray.filters.operators-filter]",
            f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
