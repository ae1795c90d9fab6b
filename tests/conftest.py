"""Settings every test shares: a fake AWS account on 127.0.0.1 only, tracing off."""

from __future__ import annotations

import os

# Never reach AWS from a test: fake credentials, one region, X-Ray off, metrics namespace set.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessChatTests",
    "POWERTOOLS_SERVICE_NAME": "chat",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
}.items():
    os.environ.setdefault(_name, _value)
