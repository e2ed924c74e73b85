"""Peer: boto3's managed copy (s3transfer ``TransferManager.copy``) with its default ``TransferConfig``.

``python -m benchmarks.suite.boto3_copy SOURCE DESTINATION [--shard I/N]`` lists the source bucket and copies
every object (or every N-th, from the I-th) to the same key in the destination bucket, the endpoint taken from
``AWS_ENDPOINT_URL``. One manager is shared by all copies, so its 10 request threads overlap them.
"""

from __future__ import annotations

import argparse
import collections

import boto3
from botocore.config import Config
from s3transfer.manager import TransferConfig, TransferManager

WINDOW = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--shard", default="0/1", help="I/N: copy the objects whose listing index is I modulo N")
    args = parser.parse_args()
    index, count = map(int, args.shard.split("/"))
    config = TransferConfig()
    client = boto3.client("s3", config=Config(
        s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
        max_pool_connections=config.max_request_concurrency))
    pending: collections.deque = collections.deque()
    with TransferManager(client, config) as manager:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=args.source)
        items = (item for page in pages for item in page.get("Contents", ()))
        for number, item in enumerate(items):
            if number % count != index:
                continue
            pending.append(manager.copy({"Bucket": args.source, "Key": item["Key"]}, args.destination, item["Key"]))
            while len(pending) > WINDOW:
                pending.popleft().result()
        while pending:
            pending.popleft().result()


if __name__ == "__main__":
    main()
