"""Benchmarks of the chat backend: ``python -m benchmarks`` (``make bench``) runs all six and writes
their tables and charts under ``docs/benchmarks/``.

- ``fanout``: one public message by the real sendmessage code to 1,000 and 10,000 connections,
  against AWS's own sequential posting loop;
- ``end_to_end``: 200 WebSocket clients on the local stack against a plain ``websockets`` broadcast;
- ``resume``: ``sync`` replaying 1,000 missed messages, version 1 and batched;
- ``cost``: AWS requests per route, turned into dollars;
- ``presence``: posts caused by 1,000 users recycling their connections, with and without the
  presence grace, and by users coming online at once;
- ``cold_start``: import time and peak memory of each handler.
"""

import os
from pathlib import Path

# Powertools' Metrics reads its namespace once, when the handlers are first imported; without one,
# handlers called side by side in one process fail as soon as 100 metrics wait to be flushed.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessChatBenchmarks")

REPO_ROOT = Path(__file__).resolve().parent.parent
