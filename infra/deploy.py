"""``make deploy`` and ``make destroy``: from credentials to a printed URL, with no step to remember.

    python -m infra.deploy deploy [--region eu-west-1] [-- <more cdk deploy arguments>]
    python -m infra.deploy destroy [--region eu-west-1]

``deploy`` checks that there are AWS credentials (one line and exit 2 if not, before anything
else runs), bootstraps the account and region for the CDK when that was never done (the
``CDKToolkit`` stack and its version parameter; bootstrapping again is harmless), deploys the
stack with ``npx aws-cdk@2``, and prints the web client's URL, the WebSocket URL and the command
that verifies the deployment. ``destroy`` deletes the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.exceptions

from infra import constants

ROOT = Path(__file__).resolve().parents[1]
CDK = ("npx", "--yes", "aws-cdk@2")
OUTPUTS_FILE = ROOT / "cdk.out" / f"{constants.STACK_NAME}.outputs.json"
BOOTSTRAP_STACK = "CDKToolkit"
# The default qualifier's version parameter; the synthesized template refuses versions below 6.
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
MIN_BOOTSTRAP_VERSION = 6
# CloudFormation states in which the bootstrap stack is not usable (never created, or gone).
_UNUSABLE_STATES = {
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
    "CREATE_FAILED",
}

Runner = Callable[..., subprocess.CompletedProcess[Any]]


class DeployError(Exception):
    """A step failed; the message is the one line the user sees."""


@dataclass(frozen=True)
class Target:
    account: str
    region: str

    @property
    def environment(self) -> str:
        return f"aws://{self.account}/{self.region}"


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Runner = subprocess.run,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" goes to cdk deploy unchanged (say, -c webClient=false).
    cdk_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    try:
        session = boto3.Session(region_name=args.region or None)
        target = find_target(session, args.command)
        if args.command == "destroy":
            destroy(target, run=run, out=out)
        else:
            deploy(session, target, cdk_args, run=run, out=out)
    except DeployError as error:
        print(f"make {args.command}: {error}", file=err)
        return 2
    return 0


def find_target(session: boto3.Session, command: str) -> Target:
    """The account and region the credentials in the environment point at; DeployError if none."""
    region = session.region_name
    if not region:
        raise DeployError(
            f"no AWS region: set AWS_REGION, run aws configure, or run make {command} REGION=eu-west-1"
        )
    try:
        identity = session.client("sts", region_name=region).get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        raise DeployError(
            "no AWS credentials found: run aws configure (or aws sso login, or set AWS_PROFILE) and try again"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise DeployError(
            f"the AWS credentials in your environment do not work ({_one_line(error)})"
        ) from None
    return Target(account=identity["Account"], region=region)


def is_bootstrapped(session: boto3.Session, region: str) -> bool:
    """Whether the CDK's bootstrap stack exists in ``region`` at a version the stack can use."""
    cloudformation = session.client("cloudformation", region_name=region)
    try:
        stacks = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except botocore.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return False
        raise DeployError(f"cannot read the {BOOTSTRAP_STACK} stack ({_one_line(error)})") from None
    if not stacks or stacks[0]["StackStatus"] in _UNUSABLE_STATES:
        return False
    try:
        parameter = session.client("ssm", region_name=region).get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)
    except botocore.exceptions.ClientError:
        return False
    value = parameter["Parameter"]["Value"]
    return value.isdigit() and int(value) >= MIN_BOOTSTRAP_VERSION


def deploy(
    session: boto3.Session, target: Target, cdk_args: Sequence[str], *, run: Runner, out: TextIO
) -> None:
    if not is_bootstrapped(session, target.region):
        print(f"Bootstrapping {target.environment} for the CDK (once per account and region).", file=out)
        out.flush()
        _cdk(run, target, "bootstrap", target.environment)
    OUTPUTS_FILE.unlink(missing_ok=True)
    _cdk(
        run,
        target,
        "deploy",
        constants.STACK_NAME,
        "--require-approval",
        "never",
        "--outputs-file",
        str(OUTPUTS_FILE),
        *cdk_args,
    )
    print(summary(read_outputs(OUTPUTS_FILE), target), file=out)


def destroy(target: Target, *, run: Runner, out: TextIO) -> None:
    _cdk(run, target, "destroy", constants.STACK_NAME, "--force")
    print(
        f"Deleted {constants.STACK_NAME} in {target.region}, with the web client's bucket and files. "
        "Kept unless deployed with -c retainData=false: the messages table and the user pool; "
        "always kept: API Gateway's account-wide logging role.",
        file=out,
    )


def read_outputs(path: Path) -> dict[str, str]:
    try:
        outputs = json.loads(path.read_text())[constants.STACK_NAME]
    except (OSError, ValueError, KeyError):
        raise DeployError(f"cdk deploy wrote no outputs for {constants.STACK_NAME} to {path}") from None
    return {str(key): str(value) for key, value in outputs.items()}


def summary(outputs: dict[str, str], target: Target) -> str:
    """What the user needs after a deploy, plainly."""
    web = outputs.get(constants.OUTPUT_WEB_CLIENT_URL)
    lines = [
        "",
        f"Deployed {constants.STACK_NAME} to {target.region} (account {target.account}).",
        "",
        f"  Web client:  {web}" if web else "  Web client:  not hosted (deployed with -c webClient=false)",
        f"  WebSocket:   {outputs[constants.OUTPUT_WEBSOCKET_URL]}",
        "",
    ]
    if web:
        lines += ["Open the web client on two phones or browsers, sign up as two users and chat.", ""]
    lines.append(f"Verify it:     make verify STACK={constants.STACK_NAME} REGION={target.region}")
    return "\n".join(lines)


def _cdk(run: Runner, target: Target, *args: str) -> None:
    env = {**os.environ, "AWS_REGION": target.region, "AWS_DEFAULT_REGION": target.region}
    env["CDK_DEFAULT_REGION"] = target.region
    env["CDK_DEFAULT_ACCOUNT"] = target.account
    command = [*CDK, *args]
    try:
        result = run(command, cwd=ROOT, env=env, check=False)
    except FileNotFoundError:
        raise DeployError(
            "npx not found: install Node.js 20 or later (it brings npx) and try again"
        ) from None
    if result.returncode != 0:
        raise DeployError(f"cdk {args[0]} failed (exit {result.returncode}); its output above says why")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("deploy", "destroy"), default="deploy")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or your AWS configuration)")
    parser.epilog = "Arguments after -- go to cdk deploy unchanged, e.g. -- -c webClient=false."
    return parser


if __name__ == "__main__":
    sys.exit(main())
