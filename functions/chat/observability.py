"""Logger and Metrics, created once for every handler (Powertools reads its settings from the
environment: POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL).

No Tracer: Powertools' Tracer is a wrapper of the AWS X-Ray SDK, which is in maintenance mode and
was most of the authorizer's cold start. Traces come from Lambda's active tracing instead (set in
``infra/functions.py``): Lambda records every sampled invocation's initialization, invocation and
overhead itself, with no SDK in the function.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

# Routes such as ping publish no metric at all; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

__all__ = ["MetricUnit", "logger", "metrics"]
