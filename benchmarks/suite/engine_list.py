"""The engine's listing (``mxtransfer_worker.inventory``) of a whole bucket, sequential or by prefix.

``python -m benchmarks.suite.engine_list BUCKET [--parallel N]`` prints how many keys it listed. Sequential is
``select_listed`` over the bucket, as the provider runs it. ``--parallel N`` finds the top-level prefixes with
one delimited listing and runs the engine's ``list_prefix`` on each in N threads: the engine has no parallel
listing yet, so this composition shows what prefix partitioning would give.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

from mxtransfer_worker.inventory import list_prefix, select_listed
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.s3uri import S3Uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bucket")
    parser.add_argument("--parallel", type=int, default=0, help="threads listing one top-level prefix each")
    args = parser.parse_args()
    client = make_s3_client(max_pool_connections=max(args.parallel, 1) + 4)
    if not args.parallel:
        print(sum(1 for _ in select_listed(client, [S3Uri(args.bucket, "")])))
        return
    top = client.list_objects_v2(Bucket=args.bucket, Delimiter="/")
    prefixes = [entry["Prefix"] for entry in top.get("CommonPrefixes", ())]
    loose = sum(1 for entry in top.get("Contents", ()))
    with ThreadPoolExecutor(args.parallel) as pool:
        counts = pool.map(lambda prefix: sum(1 for _ in list_prefix(client, S3Uri(args.bucket, prefix))), prefixes)
        print(loose + sum(counts))


if __name__ == "__main__":
    main()
