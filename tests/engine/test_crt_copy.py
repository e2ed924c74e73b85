"""The native copy client's callbacks on awscrt's threads."""

from __future__ import annotations

import os
import sys
import threading

import boto3
from botocore.config import Config

from mxtransfer_worker.crt_copy import CrtCopyClient
from mxtransfer_worker.parts import MiB

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402


def test_awscrt_threads_keep_their_python_thread_state_from_one_request_to_the_next():
    # awscrt enters Python on its own threads; a thread state made for each entry (and its thread-local data)
    # would be gone at the next, made and destroyed four times per request
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0) as emulator:
        emulator.create_bucket("src")
        emulator.create_bucket("dst")
        emulator.put_virtual_object("src", "a", MiB)
        client = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
        copies = CrtCopyClient(client, 1)
        local = threading.local()
        seen: list[tuple[int, int | None]] = []  # (thread, the entry this thread state saw last)

        def answered(answer) -> None:
            seen.append((threading.get_ident(), getattr(local, "last", None)))
            local.last = len(seen)

        for number in range(20):
            copies.send("copy_object", {"Bucket": "dst", "Key": f"copy-{number}",
                                        "CopySource": {"Bucket": "src", "Key": "a"}}, answered).result()
    threads = {thread for thread, _ in seen}
    assert len(seen) == 20 and threading.get_ident() not in threads
    assert sum(last is None for _, last in seen) == len(threads)  # only each thread's first entry found nothing
