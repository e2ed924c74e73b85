"""Peak memory of sharding a large manifest: the plan (``plan_shards``) and one worker's rows (``shard_work``),
both streaming the manifest from S3 twice.

Run: ``.venv/bin/python -m benchmarks.shard_rss [--rows 1000000] [--shards 100]``. Writes a manifest of that
many rows (keys of 40-odd characters, sizes from 0 to 80 GiB, so some rows are large objects) with its sizes
sidecar to the S3 emulator, then plans and shards it in a fresh child process and prints the child's wall time,
CPU and peak RSS (``ru_maxrss``), which include the Python interpreter, boto3 and the engine's imports.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from benchmarks.suite.server import EmulatorProcess
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
          f"rows, {time.monotonic() - planned:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    if args.child:
        _child(args.child, args.shards)
        return
    with EmulatorProcess(latency_s=0.0, small_object_max=1024 * MiB) as server:
        server.call("create_bucket", BUCKET)
        stats = upload_manifest(make_s3_client(endpoint_url=server.url), _rows(args.rows), MANIFEST)
        print(f"manifest: {stats.rows:,} rows, {stats.bytes / 2**40:,.1f} TiB")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "benchmarks.shard_rss", "--shards", str(args.shards), "--child",
                        server.url], check=True)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"sharding process: {time.monotonic() - started:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s "
              f"CPU, peak RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
