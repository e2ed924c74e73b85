"""Resuming large copies after SIGTERM (a Spot reclaim's notice), SIGKILL (a crash) or a stale checkpoint,
against the S3 emulator: a 2 GiB virtual object in 5 MiB parts (410 UploadPartCopy requests, no bytes) whose
part copies take long enough to stop the worker in the middle."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, replace

import pytest

from mxtransfer_worker.checkpoints import Checkpoint, CheckpointStore
from mxtransfer_worker.cli import EXIT_OK, EXIT_RETRY
from mxtransfer_worker.copier import ObjectCopier, StopSignal
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MAX_PARTS, GiB, MiB, PartPlan, choose_part_size, tapered_plan
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.shard import run_shard

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402

SIZE, PART = 2 * GiB, 5 * MiB
#: The part size the engine takes for PART: 8 MiB, as 410 parts of 5 MiB would be more than the fastest count.
PART_SIZE = choose_part_size(SIZE, PART)
TOTAL_PARTS = -(-SIZE // PART_SIZE)
KEY = "masters/film.mxf"
#: Each 8 MiB part copy takes about 85 ms; four at a time, the whole copy about 5 s.
BANDWIDTH = 100e6


@pytest.fixture
def emulator():
    with S3Emulator(copy_bandwidth=BANDWIDTH, write_rate=0, read_rate=0, copy_keepalive_s=0) as instance:
        yield instance


class Transfer:
    """A source with the large object (and a small one), a destination, and a manifest and report prefix."""

    def __init__(self, emulator: S3Emulator):
        self.emulator = emulator
        self.client = make_s3_client(endpoint_url=emulator.url)
        stem = uuid.uuid4().hex[:8]
        self.source, self.destination, self.work = f"src-{stem}", f"dst-{stem}", f"work-{stem}"
        for bucket in (self.source, self.destination, self.work):
            emulator.create_bucket(bucket)
        self.source_object = emulator.put_virtual_object(self.source, KEY, SIZE)
        self.client.put_object(Bucket=self.source, Key="notes.txt", Body=b"notes")
        self.manifest = f"s3://{self.work}/manifest.csv"
        upload_manifest(self.client, [ManifestRow(self.source, KEY), ManifestRow(self.source, "notes.txt")],
                        self.manifest)
        self.report = f"s3://{self.work}/report/"
        self.options = CopyOptions(destination_bucket=self.destination, part_size=PART, part_concurrency=4,
                                   object_concurrency=2, copy_annotations=False)

    def command(self, grace_seconds: float = 60) -> list[str]:
        return [sys.executable, "-m", "mxtransfer_worker", "copy", "--manifest", self.manifest,
                "--destination", f"s3://{self.destination}/", "--report", self.report, "--part-size", "5MiB",
                "--part-concurrency", "4", "--object-concurrency", "2", "--no-copy-annotations",
                "--grace-seconds", str(grace_seconds)]

    def start_worker(self, **kwargs) -> subprocess.Popen:
        env = {**os.environ, "AWS_ENDPOINT_URL": self.emulator.url}
        return subprocess.Popen(self.command(**kwargs), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)

    def parts_copied(self) -> int:
        """UploadPartCopy requests the emulator received so far."""
        return self.emulator.stats()["operations"].get("UploadPartCopy", 0)

    def uploads(self) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=self.destination).get("Uploads", [])

    def listed_parts(self) -> int:
        (upload,) = self.uploads()
        pages = self.client.get_paginator("list_parts").paginate(Bucket=self.destination, Key=KEY,
                                                                  UploadId=upload["UploadId"])
        return sum(len(page.get("Parts", [])) for page in pages)

    def checkpoints(self) -> list[dict]:
        listing = self.client.list_objects_v2(Bucket=self.work, Prefix="report/checkpoints/").get("Contents", [])
        return [json.loads(self.client.get_object(Bucket=self.work, Key=item["Key"])["Body"].read())
                for item in listing]

    def report_rows(self) -> dict[str, dict]:
        body = self.client.get_object(Bucket=self.work, Key="report/shard-00000-of-00001.csv")["Body"].read()
        return {row["key"]: row for row in csv.DictReader(io.StringIO(body.decode(), newline=""))}

    def summary(self) -> dict:
        return json.loads(self.client.get_object(Bucket=self.work, Key="report/shard-00000-of-00001.json")["Body"].read())

    def run_in_process(self, stop: StopSignal | None = None) -> dict:
        return run_shard(self.client, self.manifest, self.options, self.report, stop=stop)

    def interrupt_in_process(self, after_parts: int = 40) -> dict:
        """Run the shard in this process and stop it (60 s of grace) once ``after_parts`` parts were sent."""
        stop = StopSignal()
        watcher = threading.Thread(target=lambda: (wait_for(lambda: self.parts_copied() >= after_parts),
                                                   stop.request(60)))
        watcher.start()
        summary = self.run_in_process(stop)
        watcher.join()
        assert summary["partial"] and self.report_rows()[KEY]["error_code"] == "Interrupted"
        return summary

    def assert_copied_and_clean(self) -> None:
        """The destination is the verified copy; no upload and no checkpoint is left."""
        head = self.client.head_object(Bucket=self.destination, Key=KEY, ChecksumMode="ENABLED")
        assert head["ContentLength"] == SIZE and head["ETag"].endswith(f'-{TOTAL_PARTS}"')
        source = self.client.head_object(Bucket=self.source, Key=KEY, ChecksumMode="ENABLED")
        assert head["ChecksumCRC64NVME"] == source["ChecksumCRC64NVME"]
        assert self.uploads() == [] and self.checkpoints() == []


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(0.02)


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_worker_killed_mid_copy_resumes_from_the_parts_already_done(emulator, kill):
    transfer = Transfer(emulator)
    worker = transfer.start_worker()
    wait_for(lambda: transfer.parts_copied() >= 60)
    worker.send_signal(kill)
    _, stderr = worker.communicate(timeout=120)
    before = transfer.parts_copied()
    assert 60 <= before < TOTAL_PARTS
    (checkpoint,) = transfer.checkpoints()
    assert (checkpoint["upload_id"], checkpoint["source_etag"], checkpoint["part_size"]) == (
        transfer.uploads()[0]["UploadId"], f"\"{transfer.source_object['ETag']}\"", PART_SIZE)
    if kill == signal.SIGTERM:
        # In-flight parts finished within the grace period; the checkpoint and the partial report say so.
        assert worker.returncode == EXIT_RETRY, stderr
        assert transfer.listed_parts() == before == len(checkpoint["parts"])
        row = transfer.report_rows()[KEY]
        assert (row["status"], row["error_code"]) == ("failed", "Interrupted")
        assert f"{before} of {TOTAL_PARTS} parts done" in row["message"] and "checkpoint" in row["message"]
        assert transfer.summary()["partial"] is True
    else:
        # Parts in flight at the kill still land (like S3, the server finishes them): wait until they have.
        assert worker.returncode == -signal.SIGKILL
        wait_for(lambda: transfer.listed_parts() == transfer.parts_copied())
        before = transfer.parts_copied()

    rerun = subprocess.run(transfer.command(), env={**os.environ, "AWS_ENDPOINT_URL": emulator.url},
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == EXIT_OK, rerun.stderr
    after = transfer.parts_copied() - before
    print(f"{kill.name}: {TOTAL_PARTS} parts, {before} copied before the kill, {after} after the restart")
    assert after == TOTAL_PARTS - before
    row = transfer.report_rows()[KEY]
    assert row["status"] == "succeeded"
    assert f"resumed from a checkpoint with {before} parts already done" in row["message"]
    assert row["message"].endswith("; verified size and CRC64NVME at completion")
    assert transfer.summary()["partial"] is False
    transfer.assert_copied_and_clean()


def test_a_tapered_copy_resumes_in_the_parts_its_checkpoint_records(emulator, monkeypatch):
    # 1 TiB in parts from 162 MiB down to 5 MiB: 3,325 sent at once, then 6,090 smaller ones; stopped after
    # 4,000 parts were sent, the next run copies the rest in the same plan
    transfer = Transfer(emulator)
    emulator.put_virtual_object(transfer.source, KEY, 1024 * GiB)
    transfer.options = replace(transfer.options, part_concurrency=MAX_PARTS)
    plan = tapered_plan(1024 * GiB, PART)
    assert (plan.count, plan.steady) == (9415, 3325)
    stop, sent, send_part = StopSignal(), itertools.count(1), ObjectCopier._send_part

    def send_and_stop_at_4000(copier, *args):
        if next(sent) == 4000:
            stop.request(60)
        return send_part(copier, *args)
    monkeypatch.setattr(ObjectCopier, "_send_part", send_and_stop_at_4000)
    assert transfer.run_in_process(stop)["partial"]
    monkeypatch.undo()
    (checkpoint,) = transfer.checkpoints()
    assert (checkpoint["part_size"], checkpoint["steady_parts"], checkpoint["part_step"], checkpoint["smallest_part"]) \
        == (plan.head, plan.steady, plan.step, plan.smallest)
    done, before = transfer.listed_parts(), transfer.parts_copied()
    assert done == before == 4000

    transfer.run_in_process()
    row = transfer.report_rows()[KEY]
    assert row["status"] == "succeeded", row["message"]
    assert f"multipart copy, {plan.count} parts; resumed from a checkpoint with {done} parts already done" in row["message"]
    assert transfer.parts_copied() - before == plan.count - done
    sizes = list(plan.sizes())
    for number in (1, plan.steady + 1, plan.count):
        part = transfer.client.head_object(Bucket=transfer.destination, Key=KEY, PartNumber=number)
        assert (part["ContentLength"], part["PartsCount"]) == (sizes[number - 1], plan.count)
    assert transfer.uploads() == [] and transfer.checkpoints() == []


def test_a_checkpoint_written_before_plans_tapered_has_uniform_parts():
    written = {"source_bucket": "src", "source_key": KEY, "source_version_id": None, "source_etag": '"e"',
               "source_size": SIZE, "destination_bucket": "dst", "destination_key": KEY, "upload_id": "u",
               "part_size": PART_SIZE, "parts": []}
    assert Checkpoint(**written).plan == PartPlan(SIZE, PART_SIZE)
    assert Checkpoint(**written).plan.count == TOTAL_PARTS


def test_a_checkpoint_is_read_only_when_it_is_one_this_engine_wrote():
    written = Checkpoint("src", KEY, None, '"e"', SIZE, "dst", KEY, "u", PART_SIZE, [{"PartNumber": 1, "ETag": '"p"'}],
                         steady_parts=3, part_step=7, smallest_part=PART)
    fields = asdict(written)
    assert Checkpoint.from_json(json.dumps(fields).encode()) == written
    for data, cause in [
        (b'{"source_bucket": "src", "sour', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (json.dumps({**fields, "part_sizes": [1, 2]}).encode(), "unknown fields part_sizes"),  # another version's
        (json.dumps({name: value for name, value in fields.items() if name != "upload_id"}).encode(),
         "missing fields upload_id"),
        (json.dumps({**fields, "part_size": "8"}).encode(), "field part_size is '8'"),
        (json.dumps({**fields, "source_size": -1}).encode(), "field source_size is -1"),
        (json.dumps({**fields, "part_size": 0}).encode(), "field part_size is 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(cause)):
            Checkpoint.from_json(data)


@pytest.mark.parametrize("body", [b'{"source_bucket": "src", "upload_id": "u", "par', b'{"format": 2}'],
                         ids=["truncated", "another version's"])
def test_an_unreadable_checkpoint_starts_the_copy_over(emulator, body):
    transfer = Transfer(emulator)
    transfer.interrupt_in_process()
    (old_upload,) = transfer.uploads()
    (checkpoint,) = transfer.client.list_objects_v2(Bucket=transfer.work, Prefix="report/checkpoints/")["Contents"]
    transfer.client.put_object(Bucket=transfer.work, Key=checkpoint["Key"], Body=body)
    before = transfer.parts_copied()

    summary = transfer.run_in_process()
    assert (summary["succeeded"], summary["skipped"], summary["partial"]) == (1, 1, False)
    row = transfer.report_rows()[KEY]
    assert row["status"] == "succeeded" and "started over as the checkpoint was unreadable" in row["message"]
    assert transfer.parts_copied() - before == TOTAL_PARTS
    head = transfer.client.head_object(Bucket=transfer.destination, Key=KEY, ChecksumMode="ENABLED")
    source = transfer.client.head_object(Bucket=transfer.source, Key=KEY, ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumCRC64NVME"]) == (SIZE, source["ChecksumCRC64NVME"])
    assert transfer.checkpoints() == []
    # the upload the unreadable checkpoint named is nobody's to abort here: the lifecycle rule's
    assert [upload["UploadId"] for upload in transfer.uploads()] == [old_upload["UploadId"]]


def test_an_unreadable_checkpoint_of_a_copy_already_done_is_deleted(emulator):
    transfer = Transfer(emulator)
    transfer.run_in_process()
    location = transfer.client.list_objects_v2(Bucket=transfer.work, Prefix="report/")["Contents"]
    checkpoint_key = CheckpointStore(transfer.client, transfer.report + "checkpoints/").location(
        ManifestRow(transfer.source, KEY), transfer.destination, KEY).key
    assert checkpoint_key not in {item["Key"] for item in location}
    transfer.client.put_object(Bucket=transfer.work, Key=checkpoint_key, Body=b"not a checkpoint")

    summary = transfer.run_in_process()
    assert (summary["skipped"], summary["failed"]) == (2, 0)
    assert transfer.checkpoints() == []


def test_grace_period_over_abandons_parts_in_flight_and_exits_for_a_retry(emulator):
    emulator.configure(copy_bandwidth=PART_SIZE / 600)  # a part copy takes ten minutes
    transfer = Transfer(emulator)
    worker = transfer.start_worker(grace_seconds=1)
    wait_for(lambda: transfer.parts_copied() >= 4)
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == EXIT_RETRY, stderr
    row = transfer.report_rows()[KEY]
    assert row["error_code"] == "Interrupted" and "4 abandoned in flight" in row["message"]
    assert len(transfer.uploads()) == 1 and len(transfer.checkpoints()) == 1

    emulator.configure(copy_bandwidth=0)
    transfer.run_in_process()
    assert transfer.report_rows()[KEY]["status"] == "succeeded"
    transfer.assert_copied_and_clean()


def test_checkpoint_of_a_replaced_source_is_aborted_and_the_copy_starts_over(emulator):
    transfer = Transfer(emulator)
    transfer.interrupt_in_process()
    (old_upload,) = transfer.uploads()
    emulator.put_virtual_object(transfer.source, KEY, SIZE)  # new content: another ETag and checksum
    before = transfer.parts_copied()

    summary = transfer.run_in_process()
    assert (summary["succeeded"], summary["skipped"], summary["partial"]) == (1, 1, False)
    message = transfer.report_rows()[KEY]["message"]
    assert "started over as the checkpoint was stale, the source changed" in message
    assert transfer.parts_copied() - before == TOTAL_PARTS
    assert old_upload["UploadId"] not in {upload["UploadId"] for upload in transfer.uploads()}
    transfer.assert_copied_and_clean()


def test_checkpoint_whose_upload_is_gone_starts_over(emulator):
    transfer = Transfer(emulator)
    transfer.interrupt_in_process()
    (upload,) = transfer.uploads()
    transfer.client.abort_multipart_upload(Bucket=transfer.destination, Key=KEY, UploadId=upload["UploadId"])
    before = transfer.parts_copied()

    transfer.run_in_process()
    row = transfer.report_rows()[KEY]
    assert row["status"] == "succeeded" and "its upload no longer exists" in row["message"]
    assert transfer.parts_copied() - before == TOTAL_PARTS
    transfer.assert_copied_and_clean()


def test_permanent_failure_aborts_the_upload_and_deletes_its_checkpoint(emulator):
    transfer = Transfer(emulator)
    deleter = threading.Thread(target=lambda: (wait_for(lambda: transfer.parts_copied() >= 20),
                                               transfer.client.delete_object(Bucket=transfer.source, Key=KEY)))
    deleter.start()
    summary = transfer.run_in_process()
    deleter.join()
    assert summary["failures_by_code"] == {"NoSuchKey": 1} and not summary["partial"]
    assert transfer.uploads() == [] and transfer.checkpoints() == []


def test_a_checkpoint_the_job_role_may_not_read_fails_the_row_with_the_permissions_it_needs():
    from botocore.stub import Stubber

    from mxtransfer_worker.checkpoints import CheckpointStore
    from mxtransfer_worker.errors import CopyError

    client = make_s3_client(endpoint_url="http://127.0.0.1:9")
    store = CheckpointStore(client, "s3://work-bucket/report/checkpoints/")
    with Stubber(client) as stubber:
        stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(CopyError, match="s3:ListBucket") as raised:
            store.load(ManifestRow("src-bucket", KEY), "dst-bucket", KEY)
    assert raised.value.code == "AccessDenied" and not raised.value.temporary
