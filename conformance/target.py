"""Where the stack under test is: from a web address's ``/config.json`` or a stack's outputs.

Both give what every client needs and nothing more: the WebSocket URL, the region, the user pool
and app client ids, and Cognito's endpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.request import Request, urlopen

from clients.cli.config import ChatConfig, ConfigError, cognito_endpoint
from clients.cli.config import config_from_outputs as outputs_as_config

HTTP_TIMEOUT_S = 15


class TargetUnavailable(Exception):
    """The stack's configuration cannot be read: unreachable, missing, or no credentials to read it."""


@dataclass(frozen=True)
class Target(ChatConfig):
    """What a client of the stack needs (the chat command's own config), and where it came from."""

    described_as: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any], described_as: str) -> Target:
        """``/config.json``'s fields; Cognito's endpoint from the region when it has none."""
        region = config.get("region")
        if not config.get("cognitoEndpoint") and isinstance(region, str) and region:
            config = {**config, "cognitoEndpoint": cognito_endpoint(region)}
        try:
            chat_config = ChatConfig.from_json(config, described_as)
        except ConfigError as exc:
            raise TargetUnavailable(str(exc)) from None
        return cls(**dataclasses.asdict(chat_config), described_as=described_as)


def from_url(base_url: str) -> Target:
    """``<base_url>/config.json``, as the web client reads it (``base_url`` may be the file itself)."""
    url = base_url if base_url.endswith(".json") else base_url.rstrip("/") + "/config.json"
    if not url.startswith(("http://", "https://")):
        raise TargetUnavailable(f"{base_url} is not an http:// or https:// address")
    try:
        request = Request(url, headers={"Accept": "application/json"})  # noqa: S310 - checked above
        with urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:  # noqa: S310 - checked above
            config = json.load(reply)
    except (URLError, OSError) as exc:
        raise TargetUnavailable(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise TargetUnavailable(f"{url} is not JSON") from None
    if not isinstance(config, dict):
        raise TargetUnavailable(f"{url} is not a JSON object")
    return Target.from_config(config, url)


def from_stack(stack_name: str, region: str | None) -> Target:
    """The outputs of a deployed CloudFormation stack (needs credentials that may describe it)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        if session.region_name is None:
            raise TargetUnavailable("no AWS region: pass --region (or set AWS_REGION)")
        if session.get_credentials() is None:
            raise TargetUnavailable(
                "no AWS credentials: configure them (aws configure, AWS_PROFILE) to read the stack's outputs"
            )
        cloudformation = session.client("cloudformation")
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (NoCredentialsError, NoRegionError) as exc:
        raise TargetUnavailable(f"cannot read stack {stack_name}: {exc}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        where = f"{stack_name} in {session.region_name}"
        raise TargetUnavailable(
            f"cannot read stack {where}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise TargetUnavailable(f"cannot read stack {stack_name}: {exc}") from None
    return Target.from_config(
        config_from_outputs(stacks[0].get("Outputs", [])), f"stack {stack_name} in {session.region_name}"
    )


def config_from_outputs(outputs: list[dict[str, str]]) -> dict[str, Any]:
    """A stack's outputs (as DescribeStacks lists them) as the fields of ``/config.json``."""
    return outputs_as_config({item["OutputKey"]: item["OutputValue"] for item in outputs})
