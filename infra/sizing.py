"""Each function's memory, timeout and asynchronous-invocation retries, as plain data.

The CDK stack (``infra/functions.py``, ``infra/presence.py``) and the local stack
(``local_stack/lambdas.py``) both read them here, so the sizes the local stack reports in a
handler's context are the ones the deployed function has. Plain numbers: no ``aws_cdk`` import.
"""

from __future__ import annotations

DEFAULT_MEMORY_MB = 256
# Fan-out is CPU-bound (signing and sending one request per connection), and Lambda's CPU share
# grows with memory: 1,769 MB is one full vCPU.
MEMORY_MB = {"SendMessage": 1024}
# A fan-out worker signs and posts up to a chunk of frames: a full vCPU (1,769 MB) for it.
FANOUT_WORKER_MEMORY_MB = 1769
FANOUT_WORKER_TIMEOUT_S = 120
# Lambda runs a failed worker event again twice (about 1 and 3 minutes after the first attempt):
# a passing fault gets another go, a poison event costs three attempts. Set explicitly, not left to
# Lambda's defaults. Each retry may post the chunk's frame again: safe (see chat.dispatch).
FANOUT_WORKER_RETRY_ATTEMPTS = 2
# Past 15 minutes a live frame is more confusing than useful (throttled events wait in Lambda's
# queue up to 6 hours by default); the message is in the history for `sync` meanwhile.
FANOUT_WORKER_MAX_EVENT_AGE_S = 15 * 60
# API Gateway stops waiting for a route's answer after 29 s; a second more lets the function log
# why it ran long instead of being cut off at the same instant. Also the pre-sign-up trigger's.
ROUTE_TIMEOUT_S = 30
# The authorizer verifies one token (a JWKS fetch at most): anything slower is a fault.
AUTHORIZER_TIMEOUT_S = 10
# A presence check reads one item, may ask API Gateway about one connection and tells everyone
# (handing large audiences to fan-out workers): a minute is ample.
PRESENCE_CHECK_TIMEOUT_S = 60


def route_memory_mb(function_id: str) -> int:
    """The memory of a route's function, by ``constants.Route.function_id``."""
    return MEMORY_MB.get(function_id, DEFAULT_MEMORY_MB)
