"""``python -m benchmarks.fleet_throttles`` at a tiny size, so that it cannot rot: both worker counts copy every object
of both prefixes, and each run's line gives its figures. No timing is asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_fleet_throttles_runs_each_worker_count_and_counts_its_copies_per_second():
    done = subprocess.run([sys.executable, "-m", "benchmarks.fleet_throttles", "--objects", "60", "--prefixes", "2",
                           "--workers", "1", "2", "--runs", "1"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("60 objects of 1 MiB in 2 prefix(es); 500 writes per second per prefix"), lines
    runs = [line for line in lines if "worker(s): wall" in line]
    assert [line.split(" ")[0] for line in runs] == ["1", "2"] and not any("FAILED" in line for line in runs), lines
    copies = [line for line in lines if line.startswith("  copies per second: ")]
    assert [sum(map(int, re.findall(r"\d+", line))) for line in copies] == [60, 60], lines
