"""``python -m benchmarks [--only NAME ...] [--quick] [--output DIR]``: run the benchmarks.

Each runs in a child process of its own (``--child NAME``), so that one benchmark's environment,
cached clients and servers cannot leak into the next one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import machine
from benchmarks.report import OUTPUT

NAMES = ("fanout", "end_to_end", "resume", "cost", "presence", "cold_start", "abuse")
# A bound on each child: `make bench` as a whole must end within 10 minutes.
CHILD_TIMEOUT_S = 540


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=NAMES, help="run only this one (repeatable)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code, not the speed")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where tables and charts go")
    parser.add_argument("--child", choices=NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--command", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_one(args.child, quick=args.quick, output=args.output, command=args.command)
    command = machine.invocation()
    failures = 0
    started = time.monotonic()
    for name in args.only or NAMES:
        child = [sys.executable, "-m", "benchmarks", "--child", name, "--output", str(args.output)]
        child += ["--command", command] + (["--quick"] if args.quick else [])
        print(f"== {name}", flush=True)
        try:
            failures += subprocess.run(child, timeout=CHILD_TIMEOUT_S, check=False).returncode != 0
        except subprocess.TimeoutExpired:
            print(f"{name}: did not finish in {CHILD_TIMEOUT_S} s", flush=True)
            failures += 1
    print(f"== done in {time.monotonic() - started:.0f} s; written to {args.output}", flush=True)
    return 1 if failures else 0


def run_one(name: str, *, quick: bool, output: Path, command: str) -> int:
    from benchmarks import abuse, cold_start, cost, end_to_end, fanout, presence, resume

    runners = {
        "fanout": fanout.main,
        "end_to_end": end_to_end.main,
        "resume": resume.main,
        "cost": cost.main,
        "presence": presence.main,
        "cold_start": cold_start.main,
        "abuse": abuse.main,
    }
    report = runners[name](quick=quick, output=output, command=command or machine.invocation())
    print(report.markdown(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
