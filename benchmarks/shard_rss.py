"""Peak memory of sharding a large manifest: the plan (``plan_shards``) and one worker's rows (``shard_work``),
both streaming the manifest from S3 twice.

Run: ``.venv/bin/python -m benchmarks.shard_rss [--rows 1000000] [--shards 100]`` (``make bench`` runs it too).
Writes a manifest of that many rows (keys of 40-odd characters, sizes from 0 to 80 GiB, so some rows are large
objects) with its sizes sidecar to the S3 emulator, then plans and shards it in a fresh child process and prints
the child's wall time, CPU and peak RSS (its ``VmHWM``), which include the Python interpreter, boto3 and the
engine's imports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks.suite.measure import peak_rss_mib
from benchmarks.suite.server import EmulatorProcess
from benchmarks.suite.tools import use_dummy_credentials
from mxtransfer_worker.manifest import ManifestRow, open_manifest, upload_manifest
from mxtransfer_worker.parts import GiB, MiB
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.sharding import plan_shards, shard_work

BUCKET = "manifests"
MANIFEST = f"s3://{BUCKET}/big/manifest.csv"


def _rows(count: int):
    for index in range(count):
        size = 80 * GiB if index % 250_000 == 7 else (index * 7919) % (64 * MiB)
        yield ManifestRow("source-bucket", f"media/{index % 97:02d}/clip-{index:09d}-final-cut.mov", size=size)


def _child(url: str, shards: int) -> None:
    client = make_s3_client(endpoint_url=url)
    started = time.monotonic()
    plan = plan_shards(lambda: open_manifest(client, MANIFEST), shards, split_part_size=64 * MiB)
    planned = time.monotonic()
    mine = sum(1 for _ in shard_work(lambda: open_manifest(client, MANIFEST), shards - 1, shards,
                                     split_part_size=64 * MiB))
    print(f"plan: {sum(plan.rows):,} rows in {shards} shards ({plan.large_objects} large objects on "
          f"{plan.dedicated_shards} shards of their own), {planned - started:.1f} s; shard {shards - 1}: {mine:,} "
          f"rows, {time.monotonic() - planned:.1f} s", flush=True)
    # the peak of this process since its exec: ru_maxrss would include what the forking parent had resident
    print(json.dumps({"rss_mib": peak_rss_mib(os.getpid())}))


def measure(rows: int, shards: int) -> dict:
    """Write a manifest of ``rows`` rows to a fresh emulator, plan and shard it in a child process; returns the
    child's ``wall_s``, ``cpu_s`` and ``rss_mib``, and prints what it did."""
    with EmulatorProcess(latency_s=0.0, small_object_max=1024 * MiB) as server:
        server.call("create_bucket", BUCKET)
        stats = upload_manifest(make_s3_client(endpoint_url=server.url), _rows(rows), MANIFEST)
        print(f"manifest: {stats.rows:,} rows, {stats.bytes / 2**40:,.1f} TiB", flush=True)
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.shard_rss", "--shards", str(shards), "--child",
                                  server.url], stdout=subprocess.PIPE, text=True)
        with child.stdout:
            *lines, last = child.stdout.read().splitlines() or [""]
        _, status, usage = os.wait4(child.pid, 0)  # its own CPU; Popen.wait gives none
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise RuntimeError(f"the sharding process failed (exit {child.returncode})")
        print("\n".join(lines))
        figures = {"rows": rows, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, **json.loads(last)}
        print(f"sharding process: {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU, peak RSS"
              f" {figures['rss_mib']:.0f} MiB")
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_dummy_credentials()
    if args.child:
        _child(args.child, args.shards)
    else:
        measure(args.rows, args.shards)


if __name__ == "__main__":
    main()
