"""Part copies through the native client: in flight without a thread each, and a hung one cancelled at the
client's read timeout (awscrt has no timeout for a request's whole life) and retried alone."""

from __future__ import annotations

import os
import sys
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from mxtransfer_worker import copier as copier_module
from mxtransfer_worker.copier import SUCCEEDED, ObjectCopier
from mxtransfer_worker.crt_copy import CrtCopyClient
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.runner import copy_rows
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.throttle import PrefixTurns

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402


def test_a_hung_part_copy_is_cancelled_at_the_read_timeout_and_retried_alone():
    # a hung request that the client does not cancel ends when the emulator gives up on it (hang_max_s, 300 s by
    # default) with a broken connection, not a ReadTimeoutError
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0, copy_keepalive_s=0, seed=3) as emulator:
        emulator.create_bucket("src")
        emulator.create_bucket("dst")
        emulator.put_virtual_object("src", "big.mxf", 100 * MiB)
        client = boto3.client(
            "s3", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(read_timeout=1, retries={"total_max_attempts": 1},
                                                           s3={"addressing_style": "path"}))
        upload = client.create_multipart_upload(Bucket="dst", Key="hung")["UploadId"]
        emulator.configure(fault_hang_rate=1.0, fault_operations=frozenset({"UploadPartCopy"}))
        with pytest.raises(ReadTimeoutError):
            CrtCopyClient(client, 1).upload_part_copy(Bucket="dst", Key="hung", UploadId=upload, PartNumber=1,
                                                      CopySource={"Bucket": "src", "Key": "big.mxf"})

        emulator.configure(fault_hang_rate=0.1)
        options = CopyOptions(destination_bucket="dst", multipart_threshold=8 * MiB, part_size=5 * MiB,
                              copy_annotations=False, max_attempts=8, retry_base_delay=0.01)
        # no part executor: the native client sends every part from the object's own thread
        copier = ObjectCopier(client, options, None, copy_client=CrtCopyClient(client, 8))
        result = copier.copy(ManifestRow("src", "big.mxf"))
        stats = emulator.stats()
    assert result.status == SUCCEEDED, result.message
    assert result.message.startswith("multipart copy, 20 parts")
    assert result.message.endswith("verified size and CRC64NVME at completion")
    assert stats["operations"]["HeadObject"] == 2  # the source's and the destination's: no HEAD of the copy
    assert stats["faults"]["hang"] > 1  # the lone request's, and at least one of the copy's
    assert stats["operations"]["UploadPartCopy"] == 20 + stats["faults"]["hang"]  # each hung request sent again
    assert stats["operations"]["CreateMultipartUpload"] == 2 and "AbortMultipartUpload" not in stats["operations"]


def test_large_objects_copied_into_one_folder_share_its_part_pace_and_draw_no_slowdown(monkeypatch):
    # at a tenth of S3's scale: parts sent at 300 a second, a second's worth at once, into a prefix that takes 500
    # writes a second (500 at once); 2 objects each sending 300 at once would send 600
    monkeypatch.setattr(copier_module, "PART_RATE", 300.0)
    with S3Emulator(copy_bandwidth=0, write_rate=500, read_rate=0) as emulator:
        emulator.create_bucket("src")
        emulator.create_bucket("dst")
        for name in ("a.mxf", "b.mxf"):
            emulator.put_virtual_object("src", f"masters/{name}", 1536 * MiB)
        client = make_s3_client(endpoint_url=emulator.url)
        options = CopyOptions(destination_bucket="dst", part_size=5 * MiB, copy_annotations=False)
        results = []

        copy_rows(client, [ManifestRow("src", "masters/a.mxf"), ManifestRow("src", "masters/b.mxf")], options,
                  results.append, paced=True)
        stats = emulator.stats()

    assert [result.status for result in results] == [SUCCEEDED, SUCCEEDED], [result.message for result in results]
    assert all("multipart copy, 308 parts" in result.message for result in results), results[0].message
    assert stats["operations"]["UploadPartCopy"] == 2 * 308
    assert "SlowDown" not in stats["errors"]


def test_parts_waiting_for_their_turns_go_out_in_batches():
    # awscrt's event loop polls without sleeping while its next task is under a millisecond away, and each
    # connection has a task a second: parts sent one turn apart kept it polling for the whole copy
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0, copy_keepalive_s=0) as emulator:
        emulator.create_bucket("src")
        emulator.create_bucket("dst")
        emulator.put_virtual_object("src", "big.mxf", 300 * 5 * MiB)
        client = make_s3_client(endpoint_url=emulator.url)
        sent: list[float] = []
        client.meta.events.register("before-send.s3.UploadPartCopy", lambda **_: sent.append(time.monotonic()))
        options = CopyOptions(destination_bucket="dst", multipart_threshold=8 * MiB, part_size=5 * MiB,
                              part_concurrency=300, copy_annotations=False)
        copier = ObjectCopier(client, options, None, copy_client=CrtCopyClient(client, 64))
        copier._part_turns = PrefixTurns(rate=500, burst=0.1)  # a turn every 2 ms, 50 at once
        result = copier.copy(ManifestRow("src", "big.mxf"))
    assert result.status == SUCCEEDED, result.message
    paced = len(sent) - 50
    assert paced >= 200, len(sent)  # parts past the first 50 wait for their turns
    gaps = [later - earlier for earlier, later in zip(sent[50:], sent[51:])]
    together = sum(gap < 0.0005 for gap in gaps)  # sent one after another, not a turn (2 ms) apart
    assert together > paced / 2, f"{together} of {paced} paced parts went out with the one before"
