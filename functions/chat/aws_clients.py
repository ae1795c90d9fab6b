"""The AWS SDK's low-level clients, all from one botocore session per process.

botocore rather than boto3: every client here is a low-level one, which boto3 only hands over from
botocore, while importing boto3 also loads its resource layer and s3transfer, a sixth of a route
handler's cold start. The session is built at the first client, never at import. Its JSON
answers (DynamoDB's) are parsed by ``dynamodb_json.ItemParser``: the same result, items taken
attribute by attribute instead of through the model's every member.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat import dynamodb_json
from chat.errors import DependencyError

Answer = TypeVar("Answer")

# A botocore session is not safe to create clients from in several threads at once.
_creating = threading.Lock()


@lru_cache(maxsize=1)
def session() -> botocore.session.Session:
    created = botocore.session.get_session()
    if dynamodb_json.fits():
        created.register_component("response_parser_factory", dynamodb_json.ParserFactory())
    return created


def client(
    service_name: str, *, config: Config, endpoint_url: str | None = None, region_name: str | None = None
) -> Any:
    """A client for ``service_name``; region and credentials from the environment unless given."""
    with _creating:
        return session().create_client(
            service_name, config=config, endpoint_url=endpoint_url, region_name=region_name
        )


def unless_error(error_code: str, doing: str, call: Callable[[], Answer]) -> Answer | None:
    """Make one SDK call: its answer, or None when it failed with ``error_code`` (an answer the
    caller expects: a failed condition, a user or connection that is not there); any other failure
    is a DependencyError naming what was being done."""
    try:
        return call()
    except ClientError as exc:
        if error_code_of(exc) == error_code:
            return None
        raise DependencyError(f"could not {doing}") from exc
    except BotoCoreError as exc:
        raise DependencyError(f"could not {doing}") from exc


def error_code_of(exc: ClientError) -> str:
    """The AWS error code of a failed call (``ConditionalCheckFailedException``, ``GoneException``...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
