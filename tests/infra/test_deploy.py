"""``make deploy``/``make destroy`` without an AWS account: the no-credentials path for real, and the
bootstrap decision and the printed result against moto's server standing in for STS, CloudFormation
and SSM (the CDK CLI itself replaced by a recorder: what it does needs an account)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from infra import constants, deploy

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's
REGION = "eu-west-1"
OUTPUTS = {
    constants.OUTPUT_WEBSOCKET_URL: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    constants.OUTPUT_WEB_CLIENT_URL: "https://d111111abcdef8.cloudfront.net/",
    constants.OUTPUT_REGION: REGION,
}


def _no_aws_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of someone with no AWS setup at all (and no instance metadata to ask)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    empty = tmp_path / "empty"
    empty.write_text("")
    env.update(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
        HOME=str(tmp_path),
    )
    # A stand-in npx that records being called: nothing may run before the credentials check.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npx = bin_dir / "npx"
    npx.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "npx-called"}\n')
    npx.chmod(0o755)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def _deploy_without_aws(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m infra.deploy`` with these arguments, in an environment that knows no AWS account."""
    return subprocess.run(
        [sys.executable, "-m", "infra.deploy", *arguments],
        cwd=ROOT,
        env=_no_aws_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["deploy", "destroy"])
def test_no_credentials_is_one_line_and_a_failure(tmp_path: Path, command: str) -> None:
    """With no credentials anywhere, the command prints one line on stderr, runs nothing, exits 2."""
    result = _deploy_without_aws(tmp_path, command, "--region", REGION)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"make {command}: no AWS credentials found")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "npx-called").exists()


def test_no_region_is_one_line_and_a_failure(tmp_path: Path) -> None:
    """With no region configured or given, one line says how to give one."""
    result = _deploy_without_aws(tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "make deploy: no AWS region: set AWS_REGION, run aws configure, or run make deploy REGION=eu-west-1"
    ]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class RecordingCdk:
    """Stands in for ``npx aws-cdk@2``: records each command; ``deploy`` writes the outputs file."""

    def __init__(self, returncode: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.environments: list[dict[str, str]] = []
        self.returncode = returncode

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        self.environments.append(kwargs["env"])
        if "deploy" in command and self.returncode == 0:
            path = Path(command[command.index("--outputs-file") + 1])
            path.write_text(json.dumps({constants.STACK_NAME: OUTPUTS}))
        return subprocess.CompletedProcess(command, self.returncode)

    def verbs(self) -> list[str]:
        return [command[len(deploy.CDK)] for command in self.commands]


@pytest.fixture
def on_moto(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(deploy, "OUTPUTS_FILE", tmp_path / "outputs.json")
    _delete_bootstrap(moto_endpoint)
    return moto_endpoint


def _clients(endpoint: str) -> tuple[Any, Any]:
    import boto3

    session = boto3.Session(region_name=REGION)
    return (
        session.client("cloudformation", endpoint_url=endpoint),
        session.client("ssm", endpoint_url=endpoint),
    )


def _bootstrap(endpoint: str, version: str) -> None:
    """What `cdk bootstrap` leaves behind: the CDKToolkit stack with its version parameter."""
    cloudformation, _ = _clients(endpoint)
    parameter = {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": deploy.BOOTSTRAP_VERSION_PARAMETER, "Type": "String", "Value": version},
    }
    cloudformation.create_stack(
        StackName=deploy.BOOTSTRAP_STACK, TemplateBody=json.dumps({"Resources": {"Version": parameter}})
    )


def _delete_bootstrap(endpoint: str) -> None:
    cloudformation, ssm = _clients(endpoint)
    cloudformation.delete_stack(StackName=deploy.BOOTSTRAP_STACK)
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name=deploy.BOOTSTRAP_VERSION_PARAMETER)


def _main(*args: str, cdk: RecordingCdk) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = deploy.main(list(args), run=cdk, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_first_deploy_bootstraps_then_deploys_and_prints_the_urls(on_moto: str) -> None:
    """An account never bootstrapped: bootstrap aws://ACCOUNT/REGION, deploy, then the URLs and verify."""
    cdk = RecordingCdk()
    code, out, err = _main("deploy", "--region", REGION, cdk=cdk)
    assert (code, err) == (0, "")
    assert cdk.verbs() == ["bootstrap", "deploy"]
    assert cdk.commands[0] == [*deploy.CDK, "bootstrap", f"aws://{ACCOUNT}/{REGION}"]
    assert cdk.commands[1][len(deploy.CDK) :] == [
        "deploy",
        constants.STACK_NAME,
        "--require-approval",
        "never",
        "--outputs-file",
        str(deploy.OUTPUTS_FILE),
    ]
    assert all(env["CDK_DEFAULT_REGION"] == REGION == env["AWS_REGION"] for env in cdk.environments)
    assert f"  Web client:  {OUTPUTS[constants.OUTPUT_WEB_CLIENT_URL]}" in out.splitlines()
    assert f"  WebSocket:   {OUTPUTS[constants.OUTPUT_WEBSOCKET_URL]}" in out.splitlines()
    assert out.splitlines()[-1] == f"Verify it:     make verify STACK={constants.STACK_NAME} REGION={REGION}"


def test_a_bootstrapped_account_is_not_bootstrapped_again(on_moto: str) -> None:
    """With CDKToolkit and a current version parameter, only deploy runs; extra args reach cdk deploy."""
    _bootstrap(on_moto, "29")
    cdk = RecordingCdk()
    code, _, _ = _main("deploy", "--region", REGION, "--", "-c", "webClient=false", cdk=cdk)
    assert code == 0
    assert cdk.verbs() == ["deploy"]
    assert cdk.commands[0][-2:] == ["-c", "webClient=false"]


def test_an_outdated_bootstrap_is_bootstrapped_again(on_moto: str) -> None:
    """A bootstrap older than the template accepts (version 5) is upgraded before deploying."""
    _bootstrap(on_moto, "5")
    cdk = RecordingCdk()
    assert _main("deploy", "--region", REGION, cdk=cdk)[0] == 0
    assert cdk.verbs() == ["bootstrap", "deploy"]


def test_a_failed_deploy_is_one_line_and_a_failure(on_moto: str) -> None:
    """cdk deploy failing (say, a rollback) ends with one line and a non-zero exit, no URLs."""
    _bootstrap(on_moto, "29")
    code, out, err = _main("deploy", "--region", REGION, cdk=RecordingCdk(returncode=1))
    assert code == 2
    assert "Web client" not in out
    assert err.splitlines() == ["make deploy: cdk deploy failed (exit 1); its output above says why"]


def test_without_hosting_the_summary_says_so() -> None:
    """With -c webClient=false there is no web client URL, and the summary says why."""
    text = deploy.summary({constants.OUTPUT_WEBSOCKET_URL: "wss://x/prod"}, deploy.Target(ACCOUNT, REGION))
    assert "  Web client:  not hosted (deployed with -c webClient=false)" in text.splitlines()


def test_destroy_deletes_the_stack(on_moto: str) -> None:
    """make destroy runs cdk destroy --force for the stack, and says what is kept."""
    cdk = RecordingCdk()
    code, out, _ = _main("destroy", "--region", REGION, cdk=cdk)
    assert code == 0
    assert cdk.commands == [[*deploy.CDK, "destroy", constants.STACK_NAME, "--force"]]
    assert "messages table and the user pool" in out
