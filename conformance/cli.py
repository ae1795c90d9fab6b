"""``python -m conformance``: run every check against one stack and report, one line per check.

Exit status: 0 when every check passed, 1 when any failed, 2 when the stack's configuration could
not be read (unreachable address, no such stack, no AWS credentials to read its outputs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from conformance import target as targets
from conformance.accounts import Accounts, SignUpFailed, new_run_id
from conformance.checks import CHECKS, Check
from conformance.run import Run, Timing
from conformance.session import CheckFailed
from conformance.target import Target, TargetUnavailable

EXIT_FAILED = 1
EXIT_UNREACHABLE = 2


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Check a running chat stack against its protocol, as a client sees it.",
        epilog=f"checks, in order: {', '.join(check.name for check in CHECKS)}. "
        "Exit status: 0 all passed, 1 some failed, 2 the stack could not be reached.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the web client's address: its /config.json says where the stack is")
    where.add_argument("--stack", help="a deployed CloudFormation stack's name: its outputs say where it is")
    where.add_argument("--local", action="store_true", help="start a local stack for the run, then stop it")
    parser.add_argument("--region", help="the stack's region (with --stack; default: your AWS configuration)")
    parser.add_argument(
        "--only", help="comma-separated names of the checks to run (default: all)", default=""
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=Timing.timeout_s,
        help="seconds to wait for a frame (default %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    arguments = parse_arguments(argv)
    out = out or sys.stdout
    try:
        checks = select(arguments.only)
    except ValueError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        with _target(arguments) as target:
            return run_suite(target, checks, Timing(timeout_s=arguments.timeout), out)
    except TargetUnavailable as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


def select(only: str) -> tuple[Check, ...]:
    if not only:
        return CHECKS
    names = [name.strip() for name in only.split(",") if name.strip()]
    known = {check.name for check in CHECKS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"no check named {', '.join(unknown)}; the checks: {', '.join(sorted(known))}")
    return tuple(check for check in CHECKS if check.name in names)


@contextlib.contextmanager
def _target(arguments: argparse.Namespace) -> Iterator[Target]:
    """The stack to check (a local one runs until the block ends); TargetUnavailable if none."""
    if arguments.url:
        yield targets.from_url(arguments.url)
    elif arguments.stack:
        yield targets.from_stack(arguments.stack, arguments.region)
    else:
        with _local_stack() as url:
            yield targets.from_url(url)


@contextlib.contextmanager
def _local_stack() -> Iterator[str]:
    """A local stack on free ports for this run (needs the repository's ``local_stack``)."""
    from local_stack.aws import DUMMY_CREDENTIALS
    from local_stack.testing import running_stack

    # The local stack takes any credentials; its dummy ones let AdminDeleteUser clean up there.
    os.environ["AWS_ACCESS_KEY_ID"] = DUMMY_CREDENTIALS["aws_access_key_id"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = DUMMY_CREDENTIALS["aws_secret_access_key"]
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    with contextlib.ExitStack() as scope:
        try:
            stack = scope.enter_context(running_stack())
        except RuntimeError as exc:
            raise TargetUnavailable(f"the local stack did not start: {str(exc).splitlines()[0]}") from None
        print(f"local stack at {stack.http_url}", flush=True)
        yield stack.http_url


def run_suite(target: Target, checks: Sequence[Check], timing: Timing, out: TextIO) -> int:
    """Sign up the users, run ``checks``, delete the users; print one line each and the tally."""
    passed = failed = 0

    def report(name: str, why: str | None) -> None:
        nonlocal passed, failed
        if why is None:
            passed += 1
            print(f"PASS {name}", file=out, flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {why}", file=out, flush=True)

    print(f"checking {target.described_as}: {target.websocket_url}", file=out, flush=True)
    accounts = Accounts(target)
    run = Run(target, accounts, new_run_id(), timing)
    try:
        try:
            run.sign_up_users()
        except SignUpFailed as exc:
            report("sign-up", str(exc))
        else:
            report("sign-up", None)
            for check in checks:
                report(check.name, _outcome(check, run))
    finally:
        run.close_all()
        for line in accounts.delete_created():
            print(line, file=out, flush=True)
    print(f"{passed} passed, {failed} failed", file=out, flush=True)
    return EXIT_FAILED if failed else 0


def _outcome(check: Check, run: Run) -> str | None:
    """None when the check held, else why not (one line)."""
    try:
        check.run(run)
    except CheckFailed as exc:
        return _one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - any crash is that check's failure, not the suite's
        return _one_line(f"{type(exc).__name__}: {exc}")
    return None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
