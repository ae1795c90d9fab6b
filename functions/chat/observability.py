"""Logger, Tracer and Metrics, created once for every handler (Powertools reads its settings from the
environment: POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Routes such as ping publish no metric at all; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
