"""RunningStack's restart support: the same ports after a clean stop or a kill -9, a new process."""

from __future__ import annotations

import json
from urllib.request import urlopen

from local_stack.testing import running_stack


def config_at(url: str) -> dict[str, str]:
    with urlopen(f"{url}config.json", timeout=10) as reply:
        config: dict[str, str] = json.load(reply)
    return config


def test_a_stack_restarts_on_its_ports_after_a_stop_and_after_a_kill() -> None:
    """stop/start and kill/start bring the stack back on the same addresses, as another process."""
    with running_stack() as stack:
        addresses = (stack.http_url, stack.websocket_url, stack.management_url, stack.cognito_url)
        first_pid = stack.pid
        stack.restart()
        assert (stack.http_url, stack.websocket_url, stack.management_url, stack.cognito_url) == addresses
        assert stack.pid != first_pid
        assert config_at(stack.http_url) == stack.config
        stack.kill()
        assert not stack.running
        stack.start()
        assert config_at(stack.http_url) == stack.config
        assert stack.create_user("back").username.startswith("back-")
