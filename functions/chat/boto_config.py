"""The botocore client settings of the AWS adapters: short timeouts, a few standard-mode retries.

A handler answers within API Gateway's 29 seconds and a write must land well inside the cursor
overlap window (chat.cursor), so no call may hang on botocore's 60-second defaults.
"""

from __future__ import annotations

from botocore.config import Config


def bounded(*, connect_s: float, read_s: float, attempts: int, pool: int | None = None) -> Config:
    """Timeouts in seconds, ``attempts`` tries in all (standard retry mode), ``pool`` connections."""
    config = Config(
        connect_timeout=connect_s,
        read_timeout=read_s,
        retries={"mode": "standard", "max_attempts": attempts},
    )
    if pool is None:
        return config
    return config.merge(Config(max_pool_connections=pool))


# One control-plane call a request at most (a user lookup, a worker invocation).
ONE_CALL = bounded(connect_s=2, read_s=5, attempts=3)
