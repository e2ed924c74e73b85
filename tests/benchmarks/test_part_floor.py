"""``python -m benchmarks.part_floor`` at a tiny size, so that it cannot rot (it once failed at its first part
after the copy client's ``send`` changed): both bare rounds and then the engine's copy run and succeed, the bare
client shut down in between. No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_part_floor_runs_the_engine_and_the_bare_client_on_a_small_object():
    done = subprocess.run([sys.executable, "-m", "benchmarks.part_floor", "--tib", "0.001"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("0.001 TiB in 17 parts of up to 64 MiB")
    assert [line.split(":")[0] for line in lines[1:3]] == ["new connections", "connections of the first round"]
    assert all(line.endswith("0 failed (awscrt retries nothing: SlowDowns count here)") for line in lines[1:3])
    assert lines[3:4] and lines[3].startswith("the engine's copy_rows: succeeded in "), lines  # after the shutdown
    assert "multipart copy, 17 parts; verified size" in lines[3]
