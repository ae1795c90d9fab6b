"""``python -m conformance`` as a user runs it, against the local stack: all pass on a sound stack,
the right check fails on one broken on purpose, and an unreachable stack is exit status 2."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

from conformance.checks import CHECKS
from local_stack import REPO_ROOT
from local_stack.testing import RunningStack, running_stack

pytestmark = pytest.mark.slow
SUITE_TIMEOUT_S = 300
TALLY = re.compile(r"^(\d+) passed, (\d+) failed$")


@dataclass(frozen=True)
class Outcome:
    status: int
    lines: list[str]
    stderr: str

    def verdicts(self) -> dict[str, str]:
        """Check name → the whole PASS/FAIL line."""
        found = {}
        for line in self.lines:
            verdict, _, rest = line.partition(" ")
            if verdict in ("PASS", "FAIL"):
                found[rest.split(":", 1)[0]] = line
        return found


def run_suite(*arguments: str, env: dict[str, str] | None = None) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
        env=env,
        check=False,
    )
    return Outcome(done.returncode, done.stdout.splitlines(), done.stderr)


def users_left(stack: RunningStack) -> list[str]:
    cognito = stack.aws_client("cognito-idp")
    users = cognito.list_users(UserPoolId=stack.config["userPoolId"])["Users"]
    return [user["Username"] for user in users if user["Username"].startswith("verify-")]


def test_every_check_passes_against_the_local_stack() -> None:
    """A sound stack passes every check, the tally says so last, and the throwaway users are gone."""
    with running_stack() as stack:
        outcome = run_suite("--url", stack.http_url)
        left = users_left(stack)
    verdicts = outcome.verdicts()
    assert outcome.status == 0, "\n".join(outcome.lines) + outcome.stderr
    assert set(verdicts) == {"sign-up", *(check.name for check in CHECKS)}
    assert all(line.startswith("PASS ") for line in verdicts.values())
    assert outcome.lines[-1] == f"{len(verdicts)} passed, 0 failed"
    assert any(line.startswith("cleanup: deleted verify-") for line in outcome.lines)
    assert left == []


def test_broken_private_delivery_fails_the_suite() -> None:
    """A stack that drops private messages to the recipient's second tab fails private-delivery."""
    with running_stack(breaks=("private-delivery",)) as stack:
        outcome = run_suite("--url", stack.http_url)
    verdicts = outcome.verdicts()
    assert outcome.status == 1, "\n".join(outcome.lines) + outcome.stderr
    assert verdicts["private-delivery"].startswith("FAIL private-delivery: b2: no private message within"), (
        verdicts
    )
    tally = TALLY.match(outcome.lines[-1])
    assert tally is not None, outcome.lines[-1]
    passed, failed = int(tally[1]), int(tally[2])
    assert failed >= 1
    assert passed + failed == len(verdicts)
    assert failed == sum(line.startswith("FAIL ") for line in verdicts.values())
    # The fault is precise: what does not need a second tab still works.
    assert verdicts["sync-after-drop"].startswith("PASS"), verdicts["sync-after-drop"]
    assert verdicts["public-delivery"].startswith("PASS"), verdicts["public-delivery"]


def test_an_unreachable_address_is_exit_status_2() -> None:
    """Nothing listening at --url: one line on stderr, status 2, no checks run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = run_suite("--url", f"http://127.0.0.1:{port}")
    assert outcome.status == 2
    assert outcome.lines == []
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert outcome.stderr.startswith(f"conformance: cannot read http://127.0.0.1:{port}/config.json")


def test_a_stack_without_credentials_is_exit_status_2(tmp_path) -> None:
    """--stack with no AWS credentials anywhere: one clear line, status 2, nothing sent to AWS."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") or name in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    outcome = run_suite("--stack", "ServerlessChat", "--region", "eu-west-1", env=env)
    assert outcome.status == 2, outcome
    assert outcome.lines == []
    assert outcome.stderr.strip() == (
        "conformance: no AWS credentials: configure them (aws configure, AWS_PROFILE) "
        "to read the stack's outputs"
    )
