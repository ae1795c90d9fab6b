"""What a benchmark ran on and how it was started, and CPU time read from /proc for any process."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(command: str) -> dict[str, str]:
    """CPU model, cores, Python, the load on the machine when the run began, and the command."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load average (1, 5, 15 min) at start": load,
        "command": command,
    }


def invocation() -> str:
    """The command line that started this run, as a reader would type it."""
    arguments = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f"python -m benchmarks {arguments}".strip()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
