"""Fault injection: a transfer through an S3 that throttles and fails at random still ends with every object
verified and every row reported, and says how many requests it had to send again.

Runs against the S3 emulator (``benchmarks/s3emulator``), whose seeded faults answer a share of requests with
503 SlowDown or 500 InternalError or reset the connection; moto has no fault injection.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from mxtransfer_worker.checkpoints import CheckpointStore
from mxtransfer_worker.copier import SUCCEEDED, ObjectCopier
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.report import ShardReports, merge_reports
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.shard import run_shard

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402

SMALL_OBJECTS, LARGE_OBJECTS = 994, 6
LARGE_SIZE, PART = 42 * MiB, 5 * MiB  # 9 parts each
FAULTS = {"fault_slowdown_rate": 0.05, "fault_500_rate": 0.01, "fault_reset_rate": 0.01}


@pytest.fixture
def emulator():
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0, copy_keepalive_s=0, seed=6) as instance:
        yield instance


def _heads(client, bucket: str, keys: list[str]) -> dict[str, tuple]:
    """Size and full-object checksum of each key, and its ETag unless a multipart copy made it (a ``-N`` ETag
    is the MD5 of the parts' MD5s, not of the bytes)."""
    heads = {}
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        etag = None if key.startswith("masters/") else head["ETag"]
        heads[key] = (head["ContentLength"], head["ChecksumCRC64NVME"], etag)
    return heads


@pytest.mark.parametrize("native_client", [False, True], ids=["boto3", "native client"])
def test_transfer_through_throttling_errors_and_resets_verifies_every_object(emulator, native_client):
    stem = uuid.uuid4().hex[:8]
    source, destination, work = f"src-{stem}", f"dst-{stem}", f"work-{stem}"
    for bucket in (source, destination, work):
        emulator.create_bucket(bucket)
    small = [f"clips/{index:04d}.mov" for index in range(SMALL_OBJECTS)]
    large = [f"masters/{index}.mxf" for index in range(LARGE_OBJECTS)]
    emulator.put_virtual_objects(source, ((key, 2048 + index) for index, key in enumerate(small)))
    emulator.put_virtual_objects(source, ((key, LARGE_SIZE) for key in large))
    client = make_s3_client(max_pool_connections=40, endpoint_url=emulator.url)
    keys = large + small
    upload_manifest(client, [ManifestRow(source, key) for key in keys], f"s3://{work}/manifest.csv")
    options = CopyOptions(destination_bucket=destination, multipart_threshold=8 * MiB, part_size=PART,
                          object_concurrency=16, part_concurrency=16, copy_annotations=False, retry_base_delay=0.05,
                          native_client=native_client)

    emulator.configure(**FAULTS)
    summary = run_shard(client, f"s3://{work}/manifest.csv", options, f"s3://{work}/report/")
    emulator.configure(**{name: 0.0 for name in FAULTS})
    stats = emulator.stats()
    print(f"\nfaults injected {stats['faults']}, requests {sum(stats['operations'].values())}; "
          f"summary: retried_requests={summary['retried_requests']} throttled_requests="
          f"{summary['throttled_requests']} requests={summary['requests']} lowest_request_rate="
          f"{summary['lowest_request_rate']} seconds={summary['seconds']}")

    assert set(stats["faults"]) == {"503", "500", "reset"}
    assert (summary["rows"], summary["succeeded"], summary["failed"], summary["partial"]) == (1000, 1000, 0, False)
    injected = sum(stats["faults"].values())
    if native_client:
        # The native client sends each copy request once (the engine retries the copy, which botocore's count of
        # retried requests does not see): only the retries of the requests boto3 sends (HEADs, multipart
        # control calls) are counted; every SlowDown is seen, but those during the report upload (after the
        # counts were taken).
        assert 0 < summary["retried_requests"] < injected
        assert stats["faults"]["503"] - 5 <= summary["throttled_requests"] <= stats["faults"]["503"]
    else:
        # Every injected fault made botocore send its request again; only those during the report upload (after
        # the counts were taken) are missing from the report.
        assert injected - 5 <= summary["retried_requests"] <= injected
        assert stats["faults"]["503"] - 5 <= summary["throttled_requests"] <= stats["faults"]["503"]
    # 5% of throttles at random are within the governor's tolerance: it may or may not have lowered its rate
    assert {"rate_decreases", "lowest_request_rate"} <= set(summary)

    merged = merge_reports(client, f"s3://{work}/report/", [ShardReports(f"s3://{work}/report/", 1)]).totals
    assert (merged["rows"], merged["retried_requests"]) == (1000, summary["retried_requests"])  # in transfer.json

    body = client.get_object(Bucket=work, Key="report/shard-00000-of-00001.csv")["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert sorted(row["key"] for row in rows) == sorted(keys)  # each row once, none missing or doubled
    assert {row["status"] for row in rows} == {SUCCEEDED}
    assert all("verified" in row["message"] for row in rows)
    listed = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=destination)
              for item in page.get("Contents", [])]
    assert sorted(listed) == sorted(keys)
    assert _heads(client, destination, keys) == _heads(client, source, keys)
    assert client.list_multipart_uploads(Bucket=destination).get("Uploads", []) == []


def _client_without_retries(emulator):
    """A client whose botocore retries are off, so every fault reaches the engine."""
    return boto3.session.Session().client(
        "s3", endpoint_url=emulator.url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, s3={"addressing_style": "path"}))


def test_a_failing_part_is_retried_alone_and_the_upload_kept(emulator):
    """With botocore's retries off, every fault reaches the engine: failed parts are copied again on their own,
    within the one multipart upload (never aborted and started over)."""
    emulator.create_bucket("src")
    emulator.create_bucket("dst")
    emulator.put_virtual_object("src", "big.mxf", 100 * MiB)
    emulator.configure(fault_500_rate=0.2, fault_operations=frozenset({"UploadPartCopy"}))
    client = _client_without_retries(emulator)
    options = CopyOptions(destination_bucket="dst", multipart_threshold=8 * MiB, part_size=PART, part_concurrency=4,
                          copy_annotations=False, max_attempts=8, retry_base_delay=0.01)
    with ThreadPoolExecutor(4) as parts:
        result = ObjectCopier(client, options, parts).copy(ManifestRow("src", "big.mxf"))
    stats = emulator.stats()
    assert result.status == SUCCEEDED, result.message
    assert stats["faults"]["500"] > 0
    assert stats["operations"]["CreateMultipartUpload"] == 1
    assert "AbortMultipartUpload" not in stats["operations"]
    assert stats["operations"]["UploadPartCopy"] == 20 + stats["faults"]["500"]


class _Body:
    def stream(self, **kwargs):
        yield (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code><Message>We encountered an "
               b"internal error. Please try again.</Message></Error>")


def test_an_object_attempt_that_gives_up_on_a_part_resumes_the_same_upload(emulator):
    """Part 3 answers 500 to its first two requests (a before-send hook, so the failures are exactly placed;
    every other request reaches the emulator): the part gives up, the object's first attempt fails temporarily
    and keeps its upload and checkpoint, and the second attempt resumes it from the two parts already there."""
    emulator.create_bucket("src")
    emulator.create_bucket("dst")
    emulator.create_bucket("work")
    emulator.put_virtual_object("src", "big.mxf", 30 * MiB)
    client = _client_without_retries(emulator)
    failures = []

    def fail_part_3_twice(request, **kwargs):
        if "partNumber=3&" in request.url + "&" and len(failures) < 2:
            failures.append(request.url)
            return AWSResponse(request.url, 500, {}, _Body())
        return None

    client.meta.events.register("before-send.s3.UploadPartCopy", fail_part_3_twice)
    options = CopyOptions(destination_bucket="dst", multipart_threshold=8 * MiB, part_size=PART, part_concurrency=1,
                          copy_annotations=False, max_attempts=2, retry_base_delay=0.01)
    with ThreadPoolExecutor(1) as parts:
        result = ObjectCopier(client, options, parts, CheckpointStore(client, "s3://work/checkpoints/")).copy(
            ManifestRow("src", "big.mxf"))
    operations = emulator.stats()["operations"]
    assert len(failures) == 2
    assert result.status == SUCCEEDED, result.message
    assert "resumed from a checkpoint with 2 parts already done" in result.message
    assert operations["CreateMultipartUpload"] == 1 and "AbortMultipartUpload" not in operations
    assert operations["UploadPartCopy"] == 6  # parts 1-6 of 30 MiB, each copied once
    assert client.list_objects_v2(Bucket="work").get("KeyCount") == 0  # the checkpoint is gone with the copy
