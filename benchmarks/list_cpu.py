"""CPU per listed key: botocore's ``list_objects_v2`` against ``listing.ParallelLister`` (awscrt, pages read
with regular expressions), on the S3 emulator without latency; then the parallel listing with the rest of an
inventory (``select_listed`` into ``write_manifest``: manifest and sizes lines, in memory).

Run: ``.venv/bin/python -m benchmarks.list_cpu [--keys N] [--profile]``. Prints µs of this process's CPU per key
for each lister (the emulator runs in a process of its own); ``--profile`` adds the top of a cProfile of the
parallel lister.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats

from benchmarks.suite.server import EmulatorProcess, process_cpu
from mxtransfer_worker.inventory import select_listed
from mxtransfer_worker.listing import ParallelLister, list_prefix
from mxtransfer_worker.manifest import write_manifest
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.s3uri import S3Uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    with EmulatorProcess(latency_s=0.0) as server:
        server.call("populate", "listed", [(f"p{index % 16:02d}/{index:08d}", 1024) for index in range(args.keys)])
        client = make_s3_client(endpoint_url=server.url)
        whole = S3Uri("listed", "")
        listers = {
            "botocore list_objects_v2, one page at a time": lambda: sum(1 for _ in list_prefix(client, whole)),
            "ParallelLister, 64 requests in flight": lambda: sum(1 for _ in ParallelLister(client, 64).objects(whole)),
            "ParallelLister into manifest lines, 64 requests in flight": lambda: write_manifest(
                select_listed(client, [whole], concurrency=64), io.StringIO(), io.StringIO()).rows}
        for name, listing in listers.items():
            started = process_cpu()
            count = listing()
            print(f"{name}: {count:,} keys, {(process_cpu() - started) / count * 1e6:.1f} µs of CPU per key")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: sum(1 for _ in ParallelLister(client, 64).objects(whole)))
            pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
