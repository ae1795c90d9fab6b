"""Builds the service from the settings, lazily and once per process (never at import time).

Tests swap the pieces with ``reset()`` and the services' constructor arguments.
"""

from __future__ import annotations

import os
from functools import lru_cache

from chat.closer import ConnectionCloser
from chat.config import FANOUT_POSTS_PER_CONNECTION, settings
from chat.directory import UserDirectory
from chat.dispatch import FanoutDispatcher
from chat.grace import PresenceScheduler
from chat.limits import RateLimiter
from chat.notifier import Notifier, management_endpoint
from chat.probe import ConnectionProbe
from chat.service import ChatService
from chat.store import ChatStore


@lru_cache(maxsize=1)
def store() -> ChatStore:
    config = settings()
    return ChatStore(
        connections_table=config.connections_table,
        presence_table=config.presence_table,
        messages_table=config.messages_table,
    )


@lru_cache(maxsize=1)
def directory() -> UserDirectory:
    return UserDirectory(settings().user_pool_id)


@lru_cache(maxsize=1)
def limiter() -> RateLimiter:
    """One per process: its memory of who is flooding serves every route this instance runs."""
    config = settings()
    return RateLimiter(store(), config.budgets_per_minute, flood_close_after=config.flood_close_after)


@lru_cache(maxsize=8)
def service_for(endpoint: str) -> ChatService:
    """One service (and one pooled management-API client) per API endpoint."""
    config = settings()
    return ChatService(
        store=store(),
        notifier=Notifier(
            endpoint,
            workers=config.fanout_workers,
            region=_region(),
            posts_per_connection=FANOUT_POSTS_PER_CONNECTION,
        ),
        directory=directory(),
        dispatcher=FanoutDispatcher(config.fanout_function_name) if config.fanout_function_name else None,
        limiter=limiter(),
        closer=ConnectionCloser(endpoint, region=_region()),
        scheduler=PresenceScheduler(config.presence_queue_url) if config.presence_queue_url else None,
        probe=ConnectionProbe(endpoint, region=_region()),
        settings=config,
    )


def endpoint_for(*, api_id: str, stage: str) -> str:
    """The configured management endpoint, else the one derived from the API id and stage."""
    configured = settings().management_endpoint
    if configured:
        return configured
    return management_endpoint(api_id=api_id, region=_region(), stage=stage)


def _region() -> str:
    # Lambda always sets AWS_REGION; the local stack sets it too.
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def reset() -> None:
    """Forget every cached piece (tests change the environment between cases)."""
    settings.cache_clear()
    store.cache_clear()
    directory.cache_clear()
    limiter.cache_clear()
    service_for.cache_clear()
