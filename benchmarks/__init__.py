"""Benchmarks of the chat backend: ``python -m benchmarks`` (``make bench``) runs all five and writes
their tables and charts under ``docs/benchmarks/``.

- ``fanout``: one public message by the real sendmessage code to 1,000 and 10,000 connections,
  against AWS's own sequential posting loop;
- ``end_to_end``: 200 WebSocket clients on the local stack against a plain ``websockets`` broadcast;
- ``resume``: ``sync`` replaying 1,000 missed messages;
- ``cost``: AWS requests per route, turned into dollars;
- ``cold_start``: import time and peak memory of each handler.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
