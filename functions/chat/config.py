"""Settings read once from the environment and validated loudly.

The CDK stack and the local stack set the same variables; a missing one is an error that names it.
Endpoints for the local stack come from boto3's own variables (``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER``), so nothing here knows where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

# Environment variable names: the stack (infra/) and the local stack import these.
CONNECTIONS_TABLE = "CONNECTIONS_TABLE"
PRESENCE_TABLE = "PRESENCE_TABLE"
MESSAGES_TABLE = "MESSAGES_TABLE"
USER_POOL_ID = "USER_POOL_ID"
USER_POOL_CLIENT_ID = "USER_POOL_CLIENT_ID"
TOKEN_ISSUER = "TOKEN_ISSUER"
JWKS_URL = "JWKS_URL"
MANAGEMENT_ENDPOINT = "MANAGEMENT_ENDPOINT"
RETENTION_DAYS = "RETENTION_DAYS"
FANOUT_WORKERS = "FANOUT_WORKERS"
SYNC_OVERLAP_SECONDS = "SYNC_OVERLAP_SECONDS"
CONNECTION_TTL_SECONDS = "CONNECTION_TTL_SECONDS"
FLOOD_CLOSE_AFTER = "FLOOD_CLOSE_AFTER"
FANOUT_FUNCTION_NAME = "FANOUT_FUNCTION_NAME"
FANOUT_CHUNK_SIZE = "FANOUT_CHUNK_SIZE"
PRESENCE_GRACE_SECONDS = "PRESENCE_GRACE_SECONDS"
PRESENCE_QUEUE_URL = "PRESENCE_QUEUE_URL"
# The pre-sign-up trigger's own switch: "false" leaves confirmation to Cognito's e-mail verification.
AUTO_CONFIRM = "AUTO_CONFIRM"
# SQS delays a message by at most 15 minutes (DelaySeconds), so a longer grace cannot be scheduled.
MAX_PRESENCE_GRACE_SECONDS = 900
# The partition's DNS suffix (amazonaws.com, amazonaws.com.cn, ...): the stack sets it from
# AWS::URLSuffix, so host names built at run time are right in every partition.
AWS_URL_SUFFIX = "AWS_URL_SUFFIX"
DEFAULT_URL_SUFFIX = "amazonaws.com"
CHINA_URL_SUFFIX = "amazonaws.com.cn"

# Each user's budget per route, in cost units a minute (see chat.limits for the costs). The one place
# these defaults live: the stacks set a variable only to change one. 0 turns that route's budget off.
# A new route is one line here (and a line in chat.limits.COSTS if one request may cost more than 1).
DEFAULT_BUDGETS_PER_MINUTE = {
    "sendmessage": 120,  # messages
    "sync": 120,  # 1 + limit // 25 a call: 24 syncs of the default 100 a minute, about 6 of 500
    "who": 30,
    "ping": 60,  # clients ping every 5 minutes
    "$default": 60,  # bare "ping" text and frames no route matched
    "history": 120,  # 1 + limit // 25 a call: 40 pages of the default 50 a minute
    "typing": 300,  # clients may send one a keystroke; one in 3 s is forwarded, the rest dropped
    "read": 120,
    "inbox": 60,  # 5 a call (it may count unread in many conversations): 12 a minute
}
# Refusals within a minute after which a connection that keeps flooding is closed.
DEFAULT_FLOOD_CLOSE_AFTER = 20
# The other defaults, each written once: Settings, from_env and infra/environment.py use these.
DEFAULT_RETENTION_DAYS = 7
DEFAULT_FANOUT_WORKERS = 200  # posts in flight at once in one fan-out (one keep-alive connection each)
# A fan-out opens one connection for every this many recipients (up to FANOUT_WORKERS): a message
# to 200 connections opens 25, each posting 8 frames in turn, rather than 200 handshakes for one
# post each. 1,000 recipients (a worker's chunk) still get 125 posts in flight.
FANOUT_POSTS_PER_CONNECTION = 8
DEFAULT_SYNC_OVERLAP_SECONDS = 30
# API Gateway closes a connection after 2 hours; a little more lets a missed $disconnect expire.
DEFAULT_CONNECTION_TTL_SECONDS = 2 * 3600 + 600
DEFAULT_FANOUT_CHUNK_SIZE = 1000
DEFAULT_PRESENCE_GRACE_SECONDS = 15


def budget_variable(route: str) -> str:
    """``RATE_LIMIT_SENDMESSAGE_PER_MINUTE``, ``RATE_LIMIT_DEFAULT_PER_MINUTE`` for ``$default``."""
    return f"RATE_LIMIT_{route.lstrip('$').upper()}_PER_MINUTE"


def budgets_off() -> dict[str, str]:
    """The variables that turn every per-user budget off (benchmarks measuring something else)."""
    return {budget_variable(route): "0" for route in DEFAULT_BUDGETS_PER_MINUTE}


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the route handlers need to know about their surroundings."""

    connections_table: str
    presence_table: str
    messages_table: str
    user_pool_id: str
    management_endpoint: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    fanout_workers: int = DEFAULT_FANOUT_WORKERS
    sync_overlap_seconds: int = DEFAULT_SYNC_OVERLAP_SECONDS
    connection_ttl_seconds: int = DEFAULT_CONNECTION_TTL_SECONDS
    # Per route: cost units a user may spend a minute (0: no budget). See DEFAULT_BUDGETS_PER_MINUTE.
    budgets_per_minute: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_BUDGETS_PER_MINUTE), hash=False
    )
    flood_close_after: int = DEFAULT_FLOOD_CLOSE_AFTER
    # Large audiences are split into chunks posted by worker invocations of this function, so one
    # Lambda's CPU does not cap the fan-out rate. Unset: every post happens in the calling Lambda.
    fanout_function_name: str | None = None
    fanout_chunk_size: int = DEFAULT_FANOUT_CHUNK_SIZE
    # A user is announced offline only once their last connection has been closed this long (and
    # none has opened since): a reconnect within it costs no presence frame at all.
    presence_grace_seconds: int = DEFAULT_PRESENCE_GRACE_SECONDS
    # The SQS queue that delivers each delayed presence check. Unset: no grace (offline at once).
    presence_queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            connections_table=required(env, CONNECTIONS_TABLE),
            presence_table=required(env, PRESENCE_TABLE),
            messages_table=required(env, MESSAGES_TABLE),
            user_pool_id=required(env, USER_POOL_ID),
            management_endpoint=env.get(MANAGEMENT_ENDPOINT) or None,
            retention_days=_positive_int(env, RETENTION_DAYS, DEFAULT_RETENTION_DAYS),
            fanout_workers=_positive_int(env, FANOUT_WORKERS, DEFAULT_FANOUT_WORKERS),
            sync_overlap_seconds=_positive_int(env, SYNC_OVERLAP_SECONDS, DEFAULT_SYNC_OVERLAP_SECONDS),
            connection_ttl_seconds=_positive_int(env, CONNECTION_TTL_SECONDS, DEFAULT_CONNECTION_TTL_SECONDS),
            budgets_per_minute={
                route: _non_negative_int(env, budget_variable(route), default)
                for route, default in DEFAULT_BUDGETS_PER_MINUTE.items()
            },
            flood_close_after=_positive_int(env, FLOOD_CLOSE_AFTER, DEFAULT_FLOOD_CLOSE_AFTER),
            fanout_function_name=env.get(FANOUT_FUNCTION_NAME) or None,
            fanout_chunk_size=_positive_int(env, FANOUT_CHUNK_SIZE, DEFAULT_FANOUT_CHUNK_SIZE),
            presence_grace_seconds=_grace_seconds(env),
            presence_queue_url=env.get(PRESENCE_QUEUE_URL) or None,
        )


def required(env: Mapping[str, str], name: str) -> str:
    """The variable's value, stripped; ``ConfigError`` naming it when it is unset or blank."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required but not set")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole_number(env, name, default)
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be positive, got {value}")
    return value


def _non_negative_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole_number(env, name, default)
    if value < 0:
        raise ConfigError(f"environment variable {name} must be 0 or more, got {value}")
    return value


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number, got {raw!r}") from None


def _grace_seconds(env: Mapping[str, str]) -> int:
    raw = env.get(PRESENCE_GRACE_SECONDS, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_PRESENCE_GRACE_SECONDS
    except ValueError:
        raise ConfigError(
            f"environment variable {PRESENCE_GRACE_SECONDS} must be a whole number, got {raw!r}"
        ) from None
    if not 0 <= value <= MAX_PRESENCE_GRACE_SECONDS:
        raise ConfigError(
            f"environment variable {PRESENCE_GRACE_SECONDS} must be 0 to "
            f"{MAX_PRESENCE_GRACE_SECONDS}, got {value}"
        )
    return value


def url_suffix(region: str, env: Mapping[str, str] | None = None) -> str:
    """The DNS suffix of AWS endpoints in ``region``'s partition.

    ``AWS_URL_SUFFIX`` when the environment has it (the stack sets it); otherwise derived from the
    region, as China's regions (``cn-north-1``, ``cn-northwest-1``) are the one partition of
    public regions with another suffix.
    """
    env = os.environ if env is None else env
    configured = env.get(AWS_URL_SUFFIX, "").strip()
    if configured:
        return configured
    return CHINA_URL_SUFFIX if region.startswith("cn-") else DEFAULT_URL_SUFFIX


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    return Settings.from_env()
