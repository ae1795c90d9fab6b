"""Every benchmark runs at a tiny size (``--quick``), writes its table, and loses nothing: the
benchmark code cannot rot between runs of ``make bench``. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import NAMES

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of them at once, each in its own process (they use separate servers and ports)."""
    folder = tmp_path_factory.mktemp("benchmarks")
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", "benchmarks", "--quick", "--only", name, "--output", str(folder)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in NAMES
    }
    for name, child in children.items():
        log, _ = child.communicate(timeout=240)
        assert child.returncode == 0, f"{name}:\n{log.decode(errors='replace')[-4000:]}"
    return folder


def record(output: Path, name: str) -> dict:
    return json.loads((output / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_each_benchmark_writes_its_table(output: Path, name: str) -> None:
    """A Markdown table naming the machine and the command, and the same numbers as JSON."""
    text = (output / f"{name}.md").read_text()
    assert "| " in text and "Machine: cpu:" in text and "Command: `python -m benchmarks" in text
    assert record(output, name)["machine"]["cores"]


def test_fanout_loses_nothing_and_draws_its_chart(output: Path) -> None:
    """Every connection got exactly one frame, in every run; the chart is a PNG."""
    for outcome in record(output, "fanout")["data"]["outcomes"]:
        assert (outcome["lost"], outcome["duplicated"]) == (0, 0), outcome
    assert (output / "fanout.png").read_bytes().startswith(b"\x89PNG")


def test_end_to_end_delivers_every_message_to_every_listener(output: Path) -> None:
    """Both servers: received = messages x listening connections."""
    data = record(output, "end_to_end")["data"]
    for server in ("local_stack", "floor"):
        assert data[server]["received"] == data[server]["expected"] > 0


def test_resume_replays_every_missed_message(output: Path) -> None:
    """Both replays bring back every missed message in order (a few may repeat) over more than one
    page, and the batched one in fewer posts."""
    data = record(output, "resume")["data"]
    for replay in ("v1", "batched"):
        assert data[replay]["problems"] == []
        assert data[replay]["distinct"] >= data["missed"] and data[replay]["calls"] >= 2
    assert data["batched"]["posts"] < data["v1"]["posts"]


def test_cost_counts_the_posts_of_a_public_message(output: Path) -> None:
    """A public message posts once per connection plus the sender's ack."""
    data = record(output, "cost")["data"]
    public = [route for route in data if route.startswith("public message to ")]
    assert public
    for route in public:
        audience = int(route.removeprefix("public message to ").split()[0].replace(",", ""))
        assert data[route]["posts"] == audience + 1


def test_presence_recycles_post_nothing_with_the_grace_and_everything_without(output: Path) -> None:
    """Without the grace a recycle tells others; with it, nothing; a user who leaves is announced to N-1."""
    outcomes = {(o["scenario"], o["grace_s"]): o for o in record(output, "presence")["data"]["outcomes"]}
    users = next(iter(outcomes.values()))["users"]
    assert outcomes[("each user recycles their only connection", 0)]["posts"] > 0
    after = [o for (scenario, grace), o in outcomes.items() if scenario.startswith("each user") and grace > 0]
    assert [(o["posts"], o["checks"]) for o in after] == [(0, after[0]["measured"])]
    leaves = next(o for (scenario, _), o in outcomes.items() if scenario == "one user leaves for good")
    assert leaves["posts"] == users - 1
    online = outcomes[("N users come online at once", 0)]
    assert online["posts_for_all"] >= users * (users - 1) / 2


def test_abuse_measures_every_flood_with_and_without_budgets(output: Path) -> None:
    """A row per flooded route and mode, probed quiet and flooded; with budgets the flood is refused."""
    rows = record(output, "abuse")["data"]["rows"]
    routes = ["sendmessage", "sync", "who", "ping"]
    assert [(r["mode"], r["route"]) for r in rows] == [(m, route) for m in ("off", "on") for route in routes]
    assert all(r["probes"] > 0 and r["quiet_probes"] > 0 for r in rows)
    assert all(r["flood_refused"] == 0 for r in rows if r["mode"] == "off")
    assert all(r["flood_refused"] > 0 for r in rows if r["mode"] == "on")


def test_cold_start_measures_each_handler_beside_the_code_before(output: Path) -> None:
    """Each handler's import time, and in the same run that of the same handler at the baseline commit."""
    data = record(output, "cold_start")["data"]
    assert set(data["imports"]) == {"authorizer", "ping", "sendmessage"} and min(data["imports"].values()) > 0
    before = data["before"]["imports"]
    assert set(before) == set(data["imports"]) and min(before.values()) > 0
    whole = data["whole_process"]
    assert set(whole) == set(data["imports"]) and min(whole.values()) > 0
    assert set(data["before"]["whole_process"]) == set(before)
    text = (output / "cold_start.md").read_text()
    assert all(f"| {h} |" in text for h in data["imports"]) and ("| met |" in text or "| not met |" in text)
