"""Where the chat lives: the local stack's ``/config.json``, or a deployed stack's CloudFormation outputs."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080/config.json"
# The commercial partition's, for a region no partition claims (botocore's data is older than it).
DEFAULT_DNS_SUFFIX = "amazonaws.com"

# /config.json key -> CloudFormation output key (the stack's outputs carry the same values).
STACK_OUTPUTS = {
    "websocketUrl": "WebSocketUrl",
    "region": "Region",
    "userPoolId": "UserPoolId",
    "userPoolClientId": "UserPoolClientId",
}


class ConfigError(Exception):
    """The configuration could not be read, or lacks a value a client needs."""


@dataclass(frozen=True)
class ChatConfig:
    websocket_url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    cognito_endpoint: str

    @classmethod
    def from_json(cls, values: Mapping[str, Any], source: str) -> ChatConfig:
        """The config from ``/config.json``'s keys; a missing one is an error that names it."""
        missing = [
            key
            for key in (*STACK_OUTPUTS, "cognitoEndpoint")
            if not isinstance(values.get(key), str) or not values[key]
        ]
        if missing:
            raise ConfigError(f"{source} has no {', '.join(missing)}")
        return cls(
            websocket_url=values["websocketUrl"],
            region=values["region"],
            user_pool_id=values["userPoolId"],
            user_pool_client_id=values["userPoolClientId"],
            cognito_endpoint=values["cognitoEndpoint"],
        )


def config_url(url: str) -> str:
    """``url`` itself when it names a JSON file, else ``url`` + ``/config.json`` (a stack's address)."""
    path = urllib.parse.urlsplit(url).path
    return url if path.endswith(".json") else url.rstrip("/") + "/config.json"


def load_from_url(url: str = DEFAULT_URL, timeout: float = 10) -> ChatConfig:
    """The config a local stack serves at ``url``."""
    target = config_url(url)
    if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
        raise ConfigError(f"{target} is not an http(s) URL")
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            values = json.load(response)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {target}: {exc}") from exc
    return ChatConfig.from_json(values, target)


def load_from_stack(stack_name: str, region: str | None = None, cloudformation: Any = None) -> ChatConfig:
    """The config from a deployed stack's outputs (needs AWS credentials allowed to describe it)."""
    outputs = _stack_outputs(stack_name, region, cloudformation)
    return ChatConfig.from_json(config_from_outputs(outputs), f"stack {stack_name}'s outputs")


def config_from_outputs(outputs: Mapping[str, str]) -> dict[str, Any]:
    """A stack's outputs (by output key) as ``/config.json``'s keys, Cognito's endpoint built from
    the region (the stack has no output for it)."""
    values: dict[str, Any] = {key: outputs.get(output) for key, output in STACK_OUTPUTS.items()}
    region = values["region"]
    if isinstance(region, str) and region:
        values["cognitoEndpoint"] = cognito_endpoint(region)
    return values


def cognito_endpoint(region: str) -> str:
    """Cognito's public endpoint in ``region``, with its partition's DNS suffix."""
    return f"https://cognito-idp.{region}.{partition_dns_suffix(region)}/"


def partition_dns_suffix(region: str) -> str:
    """The DNS suffix of AWS endpoints in ``region``'s partition: ``amazonaws.com.cn`` for China's
    regions, ``amazonaws.com`` for the commercial ones; from botocore's own partition data."""
    import botocore.session

    partitions = botocore.session.get_session().get_data("endpoints")["partitions"]
    # A region the data lists by name decides first; a newer one is matched by its partition's pattern.
    for partition in partitions:
        if region in partition.get("regions", {}):
            return str(partition["dnsSuffix"])
    for partition in partitions:
        if re.fullmatch(partition["regionRegex"], region):
            return str(partition["dnsSuffix"])
    return DEFAULT_DNS_SUFFIX


def _stack_outputs(stack_name: str, region: str | None, cloudformation: Any) -> dict[str, str]:
    # Imported here: boto3 is slow to import and only this path needs it.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = cloudformation or boto3.client("cloudformation", region_name=region)
    try:
        stack = client.describe_stacks(StackName=stack_name)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"cannot describe stack {stack_name}: {exc}") from exc
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
