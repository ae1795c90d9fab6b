"""Fan-out worker: posts one frame to a chunk of connections handed over by a route function.

Run at least once per event (Lambda's asynchronous invocations), which is safe: see ``chat.dispatch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat import wiring
from chat.dispatch import FanoutJob
from chat.notifier import begin_invocation
from chat.observability import logger, metrics

if TYPE_CHECKING:
    # Types only: importing Powertools' typing module at run time loads all of Powertools' utilities.
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    begin_invocation()  # no kept-alive connection from before a freeze is trusted
    job = FanoutJob.from_event(event)
    logger.append_keys(connections=len(job.connections))
    wiring.service_for(job.endpoint).deliver(job.connections, job.frame)
    return {"connections": len(job.connections)}
