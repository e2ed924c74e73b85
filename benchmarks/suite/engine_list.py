"""The engine's inventory of a whole bucket, as ``GenerateInventoryOperator`` runs it: a listing streamed
through the filters into an uploaded manifest.

``python -m benchmarks.suite.engine_list BUCKET MANIFEST_URI [--concurrency N]`` prints how many rows the
manifest got. ``--concurrency 0`` (the default) lists one page at a time through boto3, in key order;
``N`` > 0 keeps N ``ListObjectsV2`` requests in flight through awscrt (``mxtransfer_worker.listing``).
"""

from __future__ import annotations

import argparse

from mxtransfer_worker.inventory import select_listed
from mxtransfer_worker.manifest import upload_manifest
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.s3uri import S3Uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bucket")
    parser.add_argument("manifest", help="s3://bucket/key to write the manifest to")
    parser.add_argument("--concurrency", type=int, default=0, help="listing requests in flight (0: boto3, one)")
    args = parser.parse_args()
    client = make_s3_client()
    rows = select_listed(client, [S3Uri(args.bucket, "")], concurrency=args.concurrency)
    print(upload_manifest(client, rows, args.manifest).rows)


if __name__ == "__main__":
    main()
