"""Merging a transfer's row reports: an S3 Batch Operations completion report of the driver Lambda's real
answers (in S3's ``Report_CSV_20180820`` layout) plus the reports of the AWS Batch workers it handed large
objects to, on moto's server."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading

import pytest

from mxtransfer_worker.cli import main as worker_main
from mxtransfer_worker.copier import FAILED, SUCCEEDED, CopyResult
from mxtransfer_worker.lambda_driver import HANDOFF_RECORDS, handle_event
from mxtransfer_worker.manifest import ManifestRow, encode_key
from mxtransfer_worker.report import (
    CompletionReport,
    ShardReport,
    ShardReports,
    merge_reports,
    report_totals,
)

JOB_ID = "f8fb9d89-a3aa-461d-bddc-ea6a1b131955"
#: A task of the job that timed out in the Lambda, as in S3's example report (HTTP status before the code).
TIMED_OUT = ("timed out.mov", "failed", "200", "PermanentFailure",
             'Lambda returned function error: {"errorMessage":"Task timed out after 3.00 seconds"}')


class SubmittedJobs:
    """The AWS Batch client the driver hands large objects to: remembers each job's worker command."""

    def __init__(self):
        self.commands = {}

    def submit_job(self, jobName, containerOverrides, **_):
        job_id = f"batch-{len(self.commands)}"
        self.commands[job_id] = containerOverrides["command"]
        return {"jobId": job_id}


def put_completion_report(s3, bucket: str, prefix: str, rows: list[tuple]) -> str:
    """Write a completion report as S3 Batch Operations does: one result CSV of succeeded and one of failed
    tasks under ``<prefix>/job-<id>/results/`` and the ``manifest.json`` listing them; returns its URI."""
    results = []
    for status in ("succeeded", "failed"):
        text = io.StringIO(newline="")
        csv.writer(text).writerows([row for row in rows if row[3] == status])
        body = text.getvalue().encode()
        key = f"{prefix}/job-{JOB_ID}/results/{hashlib.sha1(body).hexdigest()}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        results.append({"TaskExecutionStatus": status, "Bucket": bucket, "MD5Checksum": hashlib.md5(body).hexdigest(),
                        "Key": key})
    manifest = {"Format": "Report_CSV_20180820", "ReportCreationDate": "2026-11-01T17:48:39.725Z",
                "Results": results,
                "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}
    key = f"{prefix}/job-{JOB_ID}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{bucket}/{key}"


def read_csv(s3, bucket: str, key: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(), newline="")))


def test_completion_report_and_hand_off_reports_merge_into_one_row_per_object(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    report_uri = f"s3://{work}/reports/t-7/"
    small = {"a b/1.mov": b"a" * 10, "é/2.mov": b"b" * 20}
    large = {"big 1.mxf": b"c" * 2048, "big 2.mxf": b"d" * 4096}
    for key, body in {**small, **large}.items():
        s3.put_object(Bucket=source, Key=key, Body=body)
    s3.put_object(Bucket=destination, Key="in/é/2.mov", Body=small["é/2.mov"])  # already there
    keys = [*small, *large, "gone.mov"]
    batch = SubmittedJobs()
    arguments = {"destination": f"s3://{destination}/in/", "report": report_uri, "transferId": "t-7",
                 "jobQueue": "queue", "jobDefinition": "worker", "inlineMaxBytes": "1024",
                 "options": json.dumps({"max_attempts": 1})}
    event = {"invocationSchemaVersion": "2.0", "invocationId": "invocation", "job": {"id": JOB_ID, "userArguments": arguments},
             "tasks": [{"taskId": f"task-{number}", "s3Key": encode_key(key), "s3VersionId": None, "s3Bucket": source}
                       for number, key in enumerate(keys)]}

    answers = handle_event(event, s3, batch, {})["results"]

    # S3 Batch Operations' report of the driver's answers, plus the Lambda timeout of one more task.
    rows = [(source, encode_key(key), "", "succeeded" if answer["resultCode"] == "Succeeded" else "failed", "200",
             "" if answer["resultCode"] == "Succeeded" else answer["resultCode"], answer["resultString"])
            for key, answer in zip(keys, answers)]
    rows.append((source, encode_key(TIMED_OUT[0]), "", *TIMED_OUT[1:]))
    manifest_uri = put_completion_report(s3, work, "reports/t-7/s3-batch-operations/" + source, rows)
    # The AWS Batch workers run the hand-offs; the second source object is gone by then.
    s3.delete_object(Bucket=source, Key="big 2.mxf")
    records = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=work, Prefix=f"reports/t-7/{HANDOFF_RECORDS}",
                                                                 Delimiter="/")["Contents"])
    handoffs = [json.loads(s3.get_object(Bucket=work, Key=key)["Body"].read()) for key in records]
    assert sorted(record["source"]["key"] for record in handoffs) == sorted(large)
    for record in handoffs:
        worker_main(batch.commands[record["batchJobId"]][1:])
    sources = [CompletionReport(0, manifest_uri),
               *(ShardReports(record["report"], 1, first=1 + number) for number, record in enumerate(handoffs))]
    failing = 1 + [record["source"]["key"] for record in handoffs].index("big 2.mxf")

    merged = merge_reports(s3, report_uri, sources)

    report = read_csv(s3, work, "reports/t-7/transfer.csv")
    by_key = {row["key"]: row for row in report}
    assert len(report) == len(by_key) == 6  # every manifest row once, none of the driver's "submitted" answers
    assert {key: (row["status"], row["error_code"], row["destination_key"]) for key, row in by_key.items()} == {
        "a b/1.mov": ("succeeded", "", "in/a b/1.mov"),
        "é/2.mov": ("skipped", "", "in/é/2.mov"),
        "big 1.mxf": ("succeeded", "", "in/big 1.mxf"),
        "big 2.mxf": ("failed", "NoSuchKey", "in/big 2.mxf"),
        "gone.mov": ("failed", "NoSuchKey", ""),
        "timed out.mov": ("failed", "PermanentFailure", ""),
    }
    assert by_key["a b/1.mov"]["message"].startswith("CopyObject; verified")
    assert by_key["é/2.mov"]["message"].startswith("destination already matches")
    assert by_key["gone.mov"]["message"].startswith(f"read s3://{source}/gone.mov: NoSuchKey")
    assert by_key["timed out.mov"]["message"] == TIMED_OUT[4]
    assert (by_key["a b/1.mov"]["bytes"], by_key["big 1.mxf"]["bytes"]) == ("", "2048")  # the worker counts bytes
    assert s3.get_object(Bucket=destination, Key="in/big 1.mxf")["Body"].read() == large["big 1.mxf"]

    totals = merged.totals
    assert {name: totals[name] for name in ("rows", "succeeded", "skipped", "failed", "bytes_copied",
                                            "failures_by_code", "shard_count", "shards_reported", "missing_shards")} == {
        "rows": 6, "succeeded": 2, "skipped": 1, "failed": 3, "bytes_copied": 2048,
        "failures_by_code": {"NoSuchKey": 2, "PermanentFailure": 1}, "shard_count": 3, "shards_reported": 3,
        "missing_shards": []}
    assert json.loads(s3.get_object(Bucket=work, Key="reports/t-7/transfer.json")["Body"].read()) == totals
    assert {index: [row["key"] for row in rows] for index, rows in merged.first_errors.items()} == {
        0: ["gone.mov", "timed out.mov"], failing: ["big 2.mxf"]}
    # Progress before the merge: only the workers' summaries (S3 writes no summary of its own).
    assert report_totals(s3, sources)["rows"] == 2


def test_shards_without_a_report_are_listed_as_missing(s3, make_bucket):
    work = make_bucket("work")
    report_uri = f"s3://{work}/reports/t-8/"

    merged = merge_reports(s3, report_uri, [CompletionReport(0, None), ShardReports(f"{report_uri}batch-jobs/x/", 1, 1)])

    assert (merged.totals["rows"], merged.totals["shard_count"], merged.totals["missing_shards"]) == (0, 2, [0, 1])
    assert read_csv(s3, work, "reports/t-8/transfer.csv") == []


def test_a_shard_reports_rows_read_back_as_recorded_whatever_their_keys_and_messages_hold(s3, make_bucket):
    bucket = make_bucket("reports")
    report = ShardReport()
    report.add(CopyResult(ManifestRow("src", "plain/key.mxf", None, 5, 1), "plain/key.mxf", SUCCEEDED, "",
                          "CopyObject; verified ETag (MD5) in the copy's response", 5, 0.02))
    report.add(CopyResult(ManifestRow("src", 'a, "quoted"\r\nkey', "v1", 7, 2), 'to/a, "quoted"\r\nkey', FAILED,
                          "AccessDenied", "copy s3://src/a: no, not allowed", 0, 1.5))
    report.upload(s3, f"s3://{bucket}/report/")
    report.close()
    rows = list(ShardReports(f"s3://{bucket}/report/", 1).rows(s3, 0))
    assert [{name: value for name, value in row.items() if name != "finished_at"} for row in rows] == [
        {"line": "1", "bucket": "src", "key": "plain/key.mxf", "version_id": "", "destination_key": "plain/key.mxf",
         "status": "succeeded", "error_code": "", "message": "CopyObject; verified ETag (MD5) in the copy's response",
         "bytes": "5", "seconds": "0.02"},
        {"line": "2", "bucket": "src", "key": 'a, "quoted"\r\nkey', "version_id": "v1",
         "destination_key": 'to/a, "quoted"\r\nkey', "status": "failed", "error_code": "AccessDenied",
         "message": "copy s3://src/a: no, not allowed", "bytes": "0", "seconds": "1.5"},
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", row["finished_at"]) for row in rows)


class _Together:
    """An S3 client whose PUTs each wait for another before answering (a barrier that breaks if they are sent
    one after the other), keeping what they wrote."""

    def __init__(self):
        self.together = threading.Barrier(2, timeout=30)
        self.written = {}

    def put_object(self, Bucket, Key, Body, ContentType):
        self.together.wait()
        self.written[Key] = Body if isinstance(Body, bytes) else Body.read()


def test_a_shard_report_writes_its_csv_and_summary_at_once():
    client = _Together()
    report = ShardReport(2, 3)
    report.add(CopyResult(ManifestRow("src", "a.mxf", None, 5, 1), "a.mxf", SUCCEEDED, "", "CopyObject", 5, 0.02))

    assert report.upload(client, "s3://reports/r/") == ("s3://reports/r/shard-00002-of-00003.csv",
                                                        "s3://reports/r/shard-00002-of-00003.json")
    report.close()
    assert client.written["r/shard-00002-of-00003.csv"].decode().splitlines()[1].startswith("1,src,a.mxf,,a.mxf,")
    assert json.loads(client.written["r/shard-00002-of-00003.json"])["succeeded"] == 1


def test_a_summary_that_is_not_its_shards_is_left_out_of_progress_with_a_warning_naming_it(s3, make_bucket, caplog):
    bucket = make_bucket("reports")
    report_uri = f"s3://{bucket}/r/"
    for index in range(5):
        report = ShardReport(index, 5)
        report.add(CopyResult(ManifestRow("src", f"{index}.mxf", None, 5, 1), f"{index}.mxf", SUCCEEDED, "",
                              "CopyObject", 5, 0.02))
        report.upload(s3, report_uri)
        report.close()
    good = json.loads(s3.get_object(Bucket=bucket, Key="r/shard-00000-of-00005.json")["Body"].read())
    odd = {
        "shard-00001-of-00005.json": (b'{"shard_index": 1, "rows"', "not JSON"),
        "shard-00002-of-00005.json": (json.dumps({key: value for key, value in good.items() if key != "skipped"}
                                                 | {"shard_index": 2}).encode(), "its 'skipped' is missing"),
        "shard-00003-of-00005.json": (json.dumps(good).encode(), "it is the summary of shard 0, not of shard 3"),
        "shard-00004-of-00005.json": (b"[1, 2]", "not a JSON object"),
    }
    for name, (body, _) in odd.items():
        s3.put_object(Bucket=bucket, Key=f"r/{name}", Body=body)
    s3.put_object(Bucket=bucket, Key="r/shard-00001-of-00005.json.tmp", Body=b"not a summary's name")

    with caplog.at_level("WARNING", logger="mxtransfer_worker.report"):
        totals = report_totals(s3, [ShardReports(report_uri, 5)])
        merged = merge_reports(s3, report_uri, [ShardReports(report_uri, 5)])

    assert (totals["rows"], totals["succeeded"]) == (1, 1)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    for name, (_, cause) in odd.items():
        assert any(f"s3://{bucket}/r/{name}: {cause}" in warning for warning in warnings), (name, warnings)
    # the rows are what the merge counts: every shard's, whatever its summary
    assert (merged.totals["rows"], merged.totals["shards_reported"]) == (5, 5)


def test_a_completion_report_manifest_that_is_not_one_is_refused_naming_it(s3, make_bucket):
    bucket = make_bucket("reports")
    for body, cause in ((b"\x89PNG", "not JSON"), (b"[]", "not a JSON object"),
                        (b'{"Format": "Report_CSV_20991231"}', "its Format is 'Report_CSV_20991231'")):
        s3.put_object(Bucket=bucket, Key="job/manifest.json", Body=body)
        with pytest.raises(ValueError, match=re.escape(f"s3://{bucket}/job/manifest.json is not a Report_CSV_20180820 "
                                                       f"completion report manifest ({cause}")):
            CompletionReport(0, f"s3://{bucket}/job/manifest.json").rows(s3, 0)
