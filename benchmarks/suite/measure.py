"""Run a tool's processes and measure them: wall time, CPU seconds (from ``wait4``, which counts each process
with the children it waited for), peak RSS (``VmHWM`` sampled from /proc: ``wait4``'s ``ru_maxrss`` would
report the bench process's own size, which a forked child carries until it execs) and progress while it runs.

The wait for the processes wakes when one ends (a pidfd each), so the wall time is not rounded up to the
sampling interval. A run that passes its time cap is killed; its wall time is then extrapolated from its progress: the elapsed
time at the last progress change divided by the fraction done by then.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .tools import Process

#: Seconds between samples of progress and peak RSS (a tenth of it in a run's first 2 s).
POLL_S = 0.5


def peak_rss_mib(pid: int) -> float:
    """The peak RSS (``VmHWM``) of process ``pid`` since its exec, in MiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Measurement:
    #: None when a capped run made no measurable progress.
    wall_s: float | None
    cpu_s: float
    #: Largest peak RSS of one process (MiB).
    peak_rss_mib: float
    exit_codes: list[int]
    outputs: list[Path]
    errors: list[Path]
    #: Fraction of the work done when the run ended (1.0 for a run that finished); scales requests and CPU.
    fraction: float = 1.0
    capped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.capped and all(code == 0 for code in self.exit_codes)


def run(processes: list[Process], env: dict[str, str], workdir: Path, label: str, cap_s: float,
        progress: Callable[[], float]) -> Measurement:
    """Start ``processes`` together in ``env``, wait for all (killing them after ``cap_s``) and measure them."""
    slug = "".join(c if c.isalnum() else "-" for c in label)
    outputs = [workdir / f"{slug}-{index}.out" for index in range(len(processes))]
    errors = [workdir / f"{slug}-{index}.err" for index in range(len(processes))]
    started = time.monotonic()
    running = {}
    for process, out, err in zip(processes, outputs, errors):
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            popen = subprocess.Popen(process.argv, env={**env, **process.env}, stdout=stdout,
                                     stderr=stderr, cwd=workdir, start_new_session=True)
        running[popen.pid] = popen
    ends = {pid: os.pidfd_open(pid) for pid in running}  # readable once the process has ended
    codes: dict[int, int] = {}
    cpu = rss = 0.0
    last_fraction, last_change, capped = 0.0, 0.0, False
    while running:
        for pid in list(running):
            rss = max(rss, peak_rss_mib(pid))
            waited, status, usage = os.wait4(pid, os.WNOHANG)
            if waited:
                running.pop(pid).returncode = codes[pid] = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
        elapsed = time.monotonic() - started
        if not running:
            break
        fraction = progress()
        if fraction > last_fraction:
            last_fraction, last_change = fraction, elapsed
        if elapsed > cap_s and not capped:
            capped = True
            for popen in running.values():
                os.killpg(popen.pid, 9)
        select.select([ends[pid] for pid in running], [], [], POLL_S if elapsed > 2 else POLL_S / 10)
    wall = time.monotonic() - started
    for end in ends.values():
        os.close(end)
    measurement = Measurement(wall, cpu, rss, [codes[pid] for pid in sorted(codes)], outputs, errors)
    if capped:
        measurement.capped, measurement.fraction = True, max(progress(), last_fraction, 1e-9)
        if last_fraction:
            measurement.wall_s = last_change / last_fraction
            measurement.notes.append(f"capped at {cap_s:.0f} s with {last_fraction:.1%} done; wall extrapolated,"
                                     f" requests and CPU scaled by the same fraction")
        else:
            measurement.wall_s, measurement.fraction = None, 1.0
            measurement.notes.append(f"nothing finished within the {cap_s:.0f} s cap (not even one part); figures"
                                     f" are for those {cap_s:.0f} s")
    return measurement


def first_error_line(measurement: Measurement) -> str:
    """The first non-empty stderr line of a failed run, for the table's notes."""
    for path in measurement.errors:
        for line in path.read_text(errors="replace").splitlines():
            if line.strip() and "INFO" not in line and "NOTICE" not in line:
                return line.strip()[:160]
    return ""
