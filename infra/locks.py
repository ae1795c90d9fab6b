"""``python -m infra.locks [--check]``: resolve every requirements file into a lock with hashes.

Three locks, each from the input file beside it:

- ``requirements.lock`` from ``requirements.txt``: ``make run``, ``make chat``, ``make deploy``
  (any OS, Python 3.11+);
- ``requirements-dev.lock`` from ``requirements-dev.txt``: ``make test``, ``make bench``, held to the
  first lock's versions;
- ``functions/requirements.lock`` from ``functions/requirements.txt``: the Lambda asset, for
  Lambda's platform, without what its runtime ships.

The resolver is uv: it resolves for another platform (the Lambda lock is for arm64 / CPython 3.13
whatever machine runs it) and writes hashes. Resolving keeps the pins already in a lock while they
still satisfy its input, so ``--check`` re-resolves into a scratch copy and fails when the result
differs from the committed lock: an input changed without ``make lock``.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from uv import find_uv_bin

from infra import packaging

ROOT = packaging.PROJECT_ROOT
COMPILE_COMMAND = "make lock"  # what the locks' headers tell a reader to run
RESOLVE_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Lock:
    """One lock file and how it is resolved."""

    source: str  # input, relative to the project root
    lock: str
    options: tuple[str, ...]


def _lambda_options() -> tuple[str, ...]:
    """Resolve for the functions' platform, leaving out the packages the runtime provides."""
    target = packaging.LAMBDA_TARGET
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[target.architecture]
    platform = f"{machine}-manylinux2014"
    excluded = [flag for name in sorted(packaging.RUNTIME_PROVIDED) for flag in ("--no-emit-package", name)]
    return ("--python-version", target.python_version, "--python-platform", platform, *excluded)


LOCKS = (
    Lock("requirements.txt", "requirements.lock", ("--universal", "--python-version", "3.11")),
    Lock(
        "requirements-dev.txt",
        "requirements-dev.lock",
        ("--universal", "--python-version", "3.11", "--constraint", "requirements.lock"),
    ),
    Lock("functions/requirements.txt", "functions/requirements.lock", _lambda_options()),
)


def resolve(lock: Lock, output: Path) -> None:
    """Write ``lock``'s resolution to ``output`` (seeded with what ``output`` already pins)."""
    command = [
        find_uv_bin(),
        "pip",
        "compile",
        lock.source,
        *lock.options,
        "--generate-hashes",
        "--quiet",
        "--custom-compile-command",
        COMPILE_COMMAND,
        "--output-file",
        str(output),
    ]
    subprocess.run(command, cwd=ROOT, check=True, timeout=RESOLVE_TIMEOUT_SECONDS)  # noqa: S603


def stale_locks() -> list[str]:
    """A diff for each lock that no longer matches its input, or nothing when all match."""
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        for lock in LOCKS:
            committed = ROOT / lock.lock
            if not committed.is_file():
                problems.append(f"{lock.lock} is missing: run `{COMPILE_COMMAND}`")
                continue
            fresh = Path(scratch) / Path(lock.lock).name
            shutil.copyfile(committed, fresh)
            try:
                resolve(lock, fresh)
            except subprocess.CalledProcessError:  # uv has said why on stderr
                problems.append(f"{lock.source} does not resolve beside the other locks: `{COMPILE_COMMAND}`")
                continue
            before, after = committed.read_text().splitlines(), fresh.read_text().splitlines()
            diff = difflib.unified_diff(before, after, lock.lock, "resolved now", lineterm="")
            if text := "\n".join(diff):
                problems.append(f"{lock.lock} does not match {lock.source}: run `{COMPILE_COMMAND}`\n{text}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.locks", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a lock does not match its input")
    args = parser.parse_args(argv)
    if not args.check:
        for lock in LOCKS:
            resolve(lock, ROOT / lock.lock)
            print(f"wrote {lock.lock}")
        return 0
    problems = stale_locks()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(LOCKS)} locks match their inputs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
