"""When a fleet's SlowDowns come: ``python -m benchmarks.fleet_throttles [--workers 1 4 8] [--prefixes 1] [--runs 2]``.

Starts the emulator with the fleet scenarios' settings (S3's latency and copy bandwidth, the write ceiling scaled
down 7x), fills a source bucket with ``--objects`` objects of 1 MiB spread over ``--prefixes`` prefixes (one, as
``fleet-one``; eight, as ``fleet-8``), writes the engine's manifest as ``make bench`` does, and launches the worker
processes as it does, ``--runs`` times for each worker count. It reads the emulator's counts every 50 ms and prints,
per run: the wall time, when the first copy landed, the seconds from it to the last, the SlowDowns in all, and the
copies and SlowDowns of each second, which ``benchmarks.bench`` does not show (where in a run the throttles come).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.bench import SOURCE, upload_listed_manifest
from benchmarks.suite.scenarios import FLEET_CEILING, S3_LIKE, fleet_keys
from benchmarks.suite.server import EmulatorProcess
from benchmarks.suite.tools import CONTROL_BUCKET, TOOLS, Job, base_env, use_dummy_credentials

#: Seconds between two readings of the emulator's counts.
SAMPLE_SECONDS = 0.05


def _counts(server: EmulatorProcess, base: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """Copies that landed and SlowDowns answered since the emulator started, less ``base``."""
    stats = server.call("stats")
    slowdowns = stats["errors"].get("SlowDown", 0)
    return stats["operations"].get("CopyObject", 0) - slowdowns - base[0], slowdowns - base[1]


def run(server: EmulatorProcess, workdir: Path, workers: int, number: int, objects: int) -> str:
    """One run of ``workers`` engine processes on a fresh destination bucket: its line of figures."""
    destination = f"throttles-dst-{number}"
    server.call("create_bucket", destination)
    job = Job(server.url, SOURCE, destination, workdir, [], workers)
    env = base_env(server.url, workdir)
    base = _counts(server)
    start = time.monotonic()
    processes = [subprocess.Popen(process.argv, env={**env, **process.env}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for process in TOOLS[0].copy(job)]
    samples = []
    while any(process.poll() is None for process in processes):
        samples.append((time.monotonic() - start, *_counts(server, base)))
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - start
    samples.append((wall, *_counts(server, base)))
    failed = [process.returncode for process in processes if process.returncode]
    landed = [(at, copied) for at, copied, _ in samples if copied > 0]
    first = landed[0][0] if landed else wall
    last = next((at for at, copied in landed if copied >= objects), wall)
    copies, slowdowns = _deltas(samples, 1), _deltas(samples, 2)
    server.call("drop", destination)
    return (f"{workers} worker(s): wall {wall:.2f} s, first copy landed at {first:.2f} s, the last {last - first:.2f} s"
            f" later, {samples[-1][2]:,} SlowDowns{'; FAILED exits ' + str(failed) if failed else ''}\n"
            f"  copies per second: {copies}\n  SlowDowns per second: {slowdowns}")


def _deltas(samples: list[tuple[float, int, int]], column: int) -> list[int]:
    """How much ``column`` of the samples grew in each whole second of the run."""
    at_second_end: dict[int, int] = {}
    for sample in samples:
        at_second_end[int(sample[0])] = sample[column]
    grown, before = [], 0
    for second in range(int(samples[-1][0]) + 1):
        now = at_second_end.get(second, before)
        grown.append(now - before)
        before = now
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--prefixes", type=int, default=1)
    parser.add_argument("--objects", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with EmulatorProcess(**{**S3_LIKE, **FLEET_CEILING}) as server, tempfile.TemporaryDirectory() as work:
        server.call("populate", SOURCE, fleet_keys(args.objects, args.prefixes))
        server.call("create_bucket", CONTROL_BUCKET)
        use_dummy_credentials()  # for the manifest's upload; the workers get theirs from base_env
        upload_listed_manifest(server.url)
        print(f"{args.objects:,} objects of 1 MiB in {args.prefixes} prefix(es); {FLEET_CEILING['write_rate']:g}"
              f" writes per second per prefix; {S3_LIKE['latency_s'] * 1000:g} ms per request", flush=True)
        number = 0
        for _ in range(args.runs):
            for workers in args.workers:
                number += 1
                print(run(server, Path(work), workers, number, args.objects), flush=True)


if __name__ == "__main__":
    main()
