"""``python -m benchmarks.tls_cost`` at a tiny size, so that it cannot rot: both servers (HTTP and HTTPS) answer
both rounds and the probe prints a line per round. No timing is asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_FIGURE = r"\d+\.\d{3}"


def test_tls_cost_measures_both_rounds_over_http_and_https():
    done = subprocess.run([sys.executable, "-m", "benchmarks.tls_cost", "--requests", "20", "--runs", "1"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("20 CopyObject requests at once per round, 1 run(s) per server"), lines
    for line, name in zip(lines[1:], ("new connections", "kept connections"), strict=True):
        assert re.fullmatch(rf"{name}: HTTP {_FIGURE}-{_FIGURE} ms, HTTPS {_FIGURE}-{_FIGURE} ms;"
                            rf" TLS adds -?{_FIGURE}--?{_FIGURE} ms", line), line
