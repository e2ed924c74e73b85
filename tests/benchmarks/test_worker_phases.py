"""``python -m benchmarks.worker_phases`` at a tiny size, so that it cannot rot: the worker command copies the object
over HTTPS, trusting the emulator's certificate through ``AWS_CA_BUNDLE``, and every phase is timed. No timing is
asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_worker_phases_times_a_worker_copying_over_https():
    done = subprocess.run([sys.executable, "-m", "benchmarks.worker_phases", "--tib", "0.001", "--runs", "1", "--tls"],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    header, run = done.stdout.splitlines()[-2:]
    assert header.split() == ["run", "wall", "s", "CPU", "s", "emulator", "CPU", "s", "start", "imports", "client", "manifest", "copy",
                              "report", "end", "connections", "at", "exit"]
    assert re.fullmatch(r"\s+0(\s+\d+\.\d+){10}\s+[\d,]+", run), run
