"""After a transfer: abort the multipart uploads it left behind (only its own), and copy again just the rows its
report says failed. Against moto's server (ListMultipartUploads, AbortMultipartUpload and ListObjectsV2 work)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from mxtransfer_worker.checkpoints import Checkpoint, CheckpointStore
from mxtransfer_worker.cleanup import abort_stale_uploads
from mxtransfer_worker.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_ROWS_FAILED, main
from mxtransfer_worker.manifest import ManifestRow, open_manifest, upload_manifest
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.report import failed_rows


def _uploads(s3, bucket: str) -> set[tuple[str, str]]:
    return {(upload["Key"], upload["UploadId"])
            for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}


def _checkpoint(s3, store: CheckpointStore, source: str, destination: str, key: str) -> tuple[str, str]:
    """An upload of ``key`` with its checkpoint, as a copy interrupted for good leaves them."""
    upload_id = s3.create_multipart_upload(Bucket=destination, Key=key)["UploadId"]
    store.save(Checkpoint(source, key, None, '"etag"', 12 * MiB, destination, key, upload_id, 5 * MiB))
    return key, upload_id


def test_only_the_transfers_idle_uploads_are_aborted(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    report = f"s3://{work}/reports/t1/"
    store = CheckpointStore(s3, f"{report}checkpoints/")
    ours = {_checkpoint(s3, store, source, destination, f"agg/{name}.mxf") for name in ("a", "b")}
    foreign = s3.create_multipart_upload(Bucket=destination, Key="agg/someone-else.mxf")["UploadId"]
    outside = s3.create_multipart_upload(Bucket=destination, Key="other/x.mxf")["UploadId"]
    # A checkpoint of another transfer, under its own report prefix, names an upload under the same prefix.
    other_store = CheckpointStore(s3, f"s3://{work}/reports/t2/checkpoints/")
    theirs = _checkpoint(s3, other_store, source, destination, "agg/theirs.mxf")
    later = max(written for _, written in store.entries()) + timedelta(hours=2)
    claimed, _ = next(store.entries())
    assert store.claim_completion(claimed, "worker-1")  # as split copies do

    fresh = abort_stale_uploads(s3, f"s3://{destination}/agg/", report)
    assert (len(fresh.active), fresh.aborted, fresh.foreign) == (2, [], 2)  # just written: maybe still running
    dry = abort_stale_uploads(s3, f"s3://{destination}/agg/", report, dry_run=True, now=later)
    assert len(dry.aborted) == 2 and len(_uploads(s3, destination)) == 5

    done = abort_stale_uploads(s3, f"s3://{destination}/agg/", report, now=later)
    assert sorted(done.aborted) == sorted(f"s3://{destination}/{key} ({upload})" for key, upload in ours)
    assert _uploads(s3, destination) == {("agg/someone-else.mxf", foreign), ("other/x.mxf", outside), theirs}
    assert list(store.entries()) == [] and len(list(other_store.entries())) == 1
    assert s3.list_objects_v2(Bucket=work, Prefix="reports/t1/").get("KeyCount") == 0  # claims gone too
    assert abort_stale_uploads(s3, f"s3://{destination}/agg/", report, now=later).summary() == {
        "aborted": 0, "active": 0, "foreign": 2, "orphan_checkpoints": 0, "unreadable_checkpoints": 0}


def test_a_checkpoint_that_cannot_be_read_is_reported_and_left_alone(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    report = f"s3://{work}/reports/t1/"
    store = CheckpointStore(s3, f"{report}checkpoints/")
    key, upload_id = _checkpoint(s3, store, source, destination, "agg/a.mxf")
    s3.put_object(Bucket=work, Key="reports/t1/checkpoints/0123.json", Body=b'{"upload_id": "u", "trunc')
    later = datetime.now(timezone.utc) + timedelta(hours=2)

    done = abort_stale_uploads(s3, f"s3://{destination}/agg/", report, now=later)
    assert done.aborted == [f"s3://{destination}/{key} ({upload_id})"]  # the readable one is handled as ever
    (unreadable,) = done.unreadable_checkpoints
    assert unreadable.startswith(f"the checkpoint s3://{work}/reports/t1/checkpoints/0123.json is unreadable: not JSON")
    assert done.summary()["unreadable_checkpoints"] == 1
    assert s3.get_object(Bucket=work, Key="reports/t1/checkpoints/0123.json")["Body"].read().startswith(b'{"upload')


def test_cli_aborts_and_drops_checkpoints_whose_upload_is_gone(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    report = f"s3://{work}/reports/t1/"
    store = CheckpointStore(s3, f"{report}checkpoints/")
    key, upload_id = _checkpoint(s3, store, source, destination, "agg/gone.mxf")
    s3.abort_multipart_upload(Bucket=destination, Key=key, UploadId=upload_id)
    _checkpoint(s3, store, source, destination, "agg/left.mxf")
    assert main(["abort-stale-uploads", "--destination", f"s3://{destination}/agg/", "--report", report,
                 "--min-idle-seconds", "0"]) == EXIT_OK
    assert _uploads(s3, destination) == set() and list(store.entries()) == []


def _report_rows(s3, bucket: str, key: str) -> list[dict]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


def test_retry_copies_just_the_failed_rows(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    keys = [f"in/{index}.bin" for index in range(6)] + ["in/odd name+%.bin"]
    for key in keys[:4] + keys[-1:]:
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
    upload_manifest(s3, [ManifestRow(source, key) for key in keys], f"s3://{work}/m.csv")
    copy = ["copy", "--destination", f"s3://{destination}/out/", "--source-prefix", "in/", "--no-copy-annotations"]
    assert main([*copy, "--manifest", f"s3://{work}/m.csv", "--report", f"s3://{work}/r1/"]) == EXIT_ROWS_FAILED

    assert sorted(row.key for row in failed_rows(s3, f"s3://{work}/r1/shard-00000-of-00001.csv")) == keys[4:6]
    for key in keys[4:6]:  # the cause fixed
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
    assert main(["failed-rows", "--report", f"s3://{work}/r1/shard-00000-of-00001.csv",
                 "--manifest", f"s3://{work}/retry.csv"]) == EXIT_OK
    assert sorted(row.key for row in open_manifest(s3, f"s3://{work}/retry.csv")) == keys[4:6]
    assert main([*copy, "--manifest", f"s3://{work}/retry.csv", "--report", f"s3://{work}/r2/"]) == EXIT_OK
    retried = _report_rows(s3, work, "r2/shard-00000-of-00001.csv")
    assert sorted((row["key"], row["status"]) for row in retried) == [(key, "succeeded") for key in keys[4:6]]
    listed = s3.list_objects_v2(Bucket=destination)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted("out/" + key[3:] for key in keys)


def test_failed_rows_of_a_missing_or_foreign_report_are_bad_input(s3, make_bucket):
    work = make_bucket("work")
    s3.put_object(Bucket=work, Key="r/transfer.csv", Body=b"bucket,key\nb,k\n")
    for report in (f"s3://{work}/nothing/", f"s3://{work}/r/"):
        assert main(["failed-rows", "--report", report, "--manifest", f"s3://{work}/out.csv"]) == EXIT_BAD_INPUT
