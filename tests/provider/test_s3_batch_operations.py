"""The ``s3-batch-operations`` backend: S3 Control requests checked with botocore's Stubber (moto has no S3
Batch Operations jobs), manifests and hand-off records on moto's S3 server."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

from airflow_provider_mxtransfer.backends import FAILED, RUNNING, SUCCEEDED, get_backend
from airflow_provider_mxtransfer.backends.s3_batch_operations import S3BatchOperationsBackend, client_request_token
from airflow_provider_mxtransfer.transfer import TransferPlan
from mxtransfer_worker.lambda_driver import HANDOFF_RECORDS
from mxtransfer_worker.manifest import ManifestRow, open_manifest, upload_manifest
from mxtransfer_worker.options import CopyOptions

ACCOUNT = "111122223333"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:stack-s3batch-driver"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/stack-S3BatchOperationsRole"
TRANSFER_ID = "media-dag-copy-0123456789abcdef"
WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


def backend(**overrides) -> S3BatchOperationsBackend:
    settings = {"aws_conn_id": None, "region_name": "us-east-1", "function_arn": FUNCTION_ARN, "role_arn": ROLE_ARN,
                "account_id": ACCOUNT, "priority": 42, "job_queue": "stack-queue", "job_definition": "stack-worker",
                "inline_max_bytes": 512 * 2**20}
    settings.update(overrides)
    return get_backend("s3-batch-operations", **settings)


@pytest.fixture
def transfer(s3, make_bucket):
    """A plan whose manifest names objects in two source buckets (one of them by version id)."""
    films, stills, work, destination = make_bucket("films"), make_bucket("stills"), make_bucket("work"), make_bucket("dst")
    rows = [ManifestRow(films, "a b/1.mov", size=10), ManifestRow(stills, "é/1.jpg", "v1", size=2),
            ManifestRow(films, "a b/2.mov", size=20), ManifestRow(stills, "é/2.jpg", "v7", size=3)]
    manifest_uri = f"s3://{work}/manifests/{TRANSFER_ID}.csv"
    upload_manifest(s3, rows, manifest_uri)
    options = CopyOptions(destination_bucket=destination, destination_prefix="in/", storage_class="STANDARD_IA")
    plan = TransferPlan(TRANSFER_ID, manifest_uri, options, 3, f"s3://{work}/reports/{TRANSFER_ID}/",
                        tags={"mxtransfer:transfer-id": TRANSFER_ID, "airflow:dag-id": "media_dag"})
    return plan, films, stills, work


def expected_create_job(plan: TransferPlan, bucket: str, manifest_body: bytes, fields: list[str],
                        work: str, finished: int = 0) -> dict:
    manifest_key = f"manifests/{TRANSFER_ID}.csv.s3-batch-operations/{TRANSFER_ID}/{bucket}.csv"
    return {
        "AccountId": ACCOUNT,
        "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": {"FunctionArn": FUNCTION_ARN, "InvocationSchemaVersion": "2.0", "UserArguments": {
            "destination": f"s3://{plan.options.destination_bucket}/in/", "sourcePrefix": "",
            "options": '{"storage_class":"STANDARD_IA"}', "report": plan.report_uri, "transferId": TRANSFER_ID,
            "jobQueue": "stack-queue", "jobDefinition": "stack-worker", "inlineMaxBytes": str(512 * 2**20)}}},
        "Report": {"Bucket": f"arn:aws:s3:::{work}", "Prefix": f"reports/{TRANSFER_ID}/s3-batch-operations/{bucket}",
                   "Format": "Report_CSV_20180820", "Enabled": True, "ReportScope": "AllTasks"},
        "ClientRequestToken": hashlib.sha256(f"{TRANSFER_ID}\0{bucket}\0{finished}".encode()).hexdigest(),
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": fields},
                     "Location": {"ObjectArn": f"arn:aws:s3:::{work}/{manifest_key}",
                                  "ETag": hashlib.md5(manifest_body).hexdigest()}},
        "Description": f"mxtransfer {TRANSFER_ID} s3://{bucket}",
        "Priority": 42,
        "RoleArn": ROLE_ARN,
        "Tags": [{"Key": "airflow:dag-id", "Value": "media_dag"}, {"Key": "mxtransfer:source-bucket", "Value": bucket},
                 {"Key": "mxtransfer:transfer-id", "Value": TRANSFER_ID}],
    }


def listed(*jobs: tuple[str, str, str, datetime]) -> dict:
    """A ListJobs answer of (job id, bucket, status, creation time) jobs of the transfer, plus a stranger's."""
    return {"Jobs": [{"JobId": "other-transfer", "Description": "mxtransfer other-0000 s3://films", "Status": "Active",
                      "CreationTime": WHEN}] +
            [{"JobId": job_id, "Description": f"mxtransfer {TRANSFER_ID} s3://{bucket}", "Status": status,
              "CreationTime": created} for job_id, bucket, status, created in jobs]}


def test_one_create_job_per_source_bucket_with_its_own_manifest(s3, transfer):
    plan, films, stills, work = transfer
    ops = backend()
    films_manifest = f"{films},a+b/1.mov\n{films},a+b/2.mov\n".encode()
    stills_manifest = f"{stills},%C3%A9/1.jpg,v1\n{stills},%C3%A9/2.jpg,v7\n".encode()
    with Stubber(ops.s3control.conn) as s3control:
        s3control.add_response("list_jobs", {"Jobs": []}, {"AccountId": ACCOUNT, "MaxResults": 1000})
        s3control.add_response("create_job", {"JobId": "job-films"},
                               expected_create_job(plan, films, films_manifest, ["Bucket", "Key"], work))
        s3control.add_response("create_job", {"JobId": "job-stills"},
                               expected_create_job(plan, stills, stills_manifest, ["Bucket", "Key", "VersionId"], work))

        handle = ops.submit(plan)

        s3control.assert_no_pending_responses()
    assert handle == {"backend": "s3-batch-operations", "job_ids": ["job-films", "job-stills"], "shard_count": 2,
                      "s3_batch_operations_job_id": "job-films", "account_id": ACCOUNT}
    stills_uri = f"{plan.manifest_uri}.s3-batch-operations/{TRANSFER_ID}/{stills}.csv"
    assert [(row.bucket, row.key, row.version_id, row.size) for row in open_manifest(s3, stills_uri)] == [
        (stills, "é/1.jpg", "v1", 2), (stills, "é/2.jpg", "v7", 3)]


def submitted_tokens(plan: TransferPlan, buckets: list[str], earlier_jobs: list[tuple]) -> list[str]:
    """The ClientRequestTokens of the create_job requests ``submit`` sends when ListJobs shows ``earlier_jobs``."""
    ops = backend()
    tokens = []
    ops.s3control.conn.meta.events.register("provide-client-params.s3-control.CreateJob",
                                            lambda params, **_: tokens.append(params["ClientRequestToken"]))
    with Stubber(ops.s3control.conn) as s3control:
        s3control.add_response("list_jobs", listed(*earlier_jobs))
        for bucket in buckets:
            s3control.add_response("create_job", {"JobId": f"job-{bucket}"})
        ops.submit(plan)
    return tokens


def test_client_request_token_repeats_on_a_retry_and_changes_after_finished_jobs(transfer):
    plan, films, stills, work = transfer
    first = submitted_tokens(plan, [films, stills], [])
    retried = submitted_tokens(plan, [films, stills], [("job-1", films, "Preparing", WHEN)])
    rerun = submitted_tokens(plan, [films, stills], [("job-1", films, "Complete", WHEN)])

    assert first == [client_request_token(TRANSFER_ID, films, 0), client_request_token(TRANSFER_ID, stills, 0)]
    assert retried == first  # a crash after create_job: the retry sends the same request, S3 creates no new job
    assert rerun == [client_request_token(TRANSFER_ID, films, 1), first[1]]  # films' job ended: a new one
    assert len(set(first)) == 2 and all(len(token) == 64 for token in first)


def test_find_existing_reattaches_while_a_job_is_in_flight():
    later = datetime(2026, 11, 2, tzinfo=timezone.utc)
    cases = [
        ([], None),
        ([("old-films", "films", "Complete", WHEN), ("old-stills", "stills", "Failed", WHEN)], None),
        ([("old-films", "films", "Complete", WHEN), ("new-films", "films", "Active", later),
          ("stills-1", "stills", "Complete", WHEN)], ["new-films", "stills-1"]),
    ]
    for jobs, expected in cases:
        ops = backend()
        with Stubber(ops.s3control.conn) as s3control:
            s3control.add_response("list_jobs", {**listed(*jobs[:1]), "NextToken": "page-2"},
                                   {"AccountId": ACCOUNT, "MaxResults": 1000})
            s3control.add_response("list_jobs", {"Jobs": listed(*jobs[1:])["Jobs"][1:]},
                                   {"AccountId": ACCOUNT, "MaxResults": 1000, "NextToken": "page-2"})
            handle = ops.find_existing(TRANSFER_ID)
        assert (handle and handle["job_ids"]) == expected


def describe(job_id: str, status: str, failed: int = 0, total: int = 10, reasons=()) -> dict:
    return {"Job": {"JobId": job_id, "Status": status, "CreationTime": WHEN, "FailureReasons": list(reasons),
                    "ProgressSummary": {"TotalNumberOfTasks": total, "NumberOfTasksSucceeded": total - failed,
                                        "NumberOfTasksFailed": failed}}}


def write_handoffs(s3, work: str, *batch_job_ids: str) -> None:
    for number, job_id in enumerate(batch_job_ids):
        record = f"reports/{TRANSFER_ID}/{HANDOFF_RECORDS}{number:032x}"
        s3.put_object(Bucket=work, Key=f"{record}.json",
                      Body=json.dumps({"batchJobId": job_id, "report": f"s3://{work}/{record}/"}).encode())


def batch_job(job_id: str, status: str, reason: str = "") -> dict:
    return {"jobId": job_id, "jobName": f"mxtransfer-{job_id}", "jobQueue": "stack-queue", "status": status,
            "statusReason": reason, "startedAt": 1, "jobDefinition": "stack-worker"}


@pytest.mark.parametrize("statuses, handoffs, state, counts", [
    (["Active", "Preparing"], [], RUNNING, (0, 0, 1)),
    (["Complete", "Complete"], [], SUCCEEDED, (2, 0, 0)),
    (["Complete", "Complete"], ["RUNNING"], RUNNING, (2, 0, 1)),
    (["Complete", "Complete"], ["SUCCEEDED", "FAILED"], FAILED, (3, 1, 0)),
    (["Complete", "Failed"], ["SUCCEEDED"], FAILED, (2, 1, 0)),
    (["Complete", "Cancelled"], [], FAILED, (1, 1, 0)),
])
def test_status_maps_jobs_and_hand_offs(s3, transfer, statuses, handoffs, state, counts):
    plan, films, stills, work = transfer
    write_handoffs(s3, work, *[f"batch-{number}" for number in range(len(handoffs))])
    ops = backend(account_id=None)  # the handle's account is used
    handle = {"job_ids": ["job-films", "job-stills"], "account_id": ACCOUNT, "report_uri": plan.report_uri}
    with Stubber(ops.s3control.conn) as s3control, Stubber(ops.batch.client) as batch:
        for job_id, status in zip(handle["job_ids"], statuses):
            s3control.add_response("describe_job", describe(job_id, status), {"AccountId": ACCOUNT, "JobId": job_id})
        if handoffs:
            batch.add_response("describe_jobs", {"jobs": [
                batch_job(f"batch-{number}", status, "Essential container in task exited")
                for number, status in enumerate(handoffs)]}, {"jobs": [f"batch-{n}" for n in range(len(handoffs))]})

        fleet = ops.status(handle)

    assert fleet.state == state
    assert (fleet.succeeded, fleet.failed, fleet.running) == counts
    assert fleet.shard_count == 2 + len(handoffs)


def test_failed_tasks_fail_the_transfer_with_a_reason_pointing_at_the_reports(s3, transfer):
    plan, films, stills, work = transfer
    ops = backend()
    handle = {"job_ids": ["job-films", "job-stills"], "account_id": ACCOUNT, "report_uri": plan.report_uri}
    with Stubber(ops.s3control.conn) as s3control:
        s3control.add_response("describe_job", describe("job-films", "Complete", failed=3, total=1200))
        s3control.add_response("describe_job", describe("job-stills", "Failed", reasons=[
            {"FailureCode": "ManifestETagMismatch", "FailureReason": "The manifest ETag does not match"}]))

        fleet = asyncio.run(ops.astatus(handle))

    assert fleet.state == FAILED and fleet.failed_shards == [0, 1]
    assert fleet.reason == (
        "S3 Batch Operations job job-films Complete with 3 of 1,200 tasks failed; S3 Batch Operations job "
        "job-stills Failed (ManifestETagMismatch: The manifest ETag does not match). Failed tasks are listed in "
        f"the completion reports under {plan.report_uri}s3-batch-operations/")


def test_terminate_cancels_jobs_and_hand_offs_still_in_flight(s3, transfer):
    plan, films, stills, work = transfer
    write_handoffs(s3, work, "batch-0", "batch-1")
    ops = backend()
    handle = {"job_ids": ["job-films", "job-stills"], "account_id": ACCOUNT, "report_uri": plan.report_uri}
    with Stubber(ops.s3control.conn) as s3control, Stubber(ops.batch.client) as batch:
        s3control.add_response("update_job_status", {"JobId": "job-films", "Status": "Cancelling"}, {
            "AccountId": ACCOUNT, "JobId": "job-films", "RequestedJobStatus": "Cancelled",
            "StatusUpdateReason": "task killed"})
        s3control.add_client_error("update_job_status", "JobStatusException", "job is already Complete",
                                   http_status_code=400)
        batch.add_response("describe_jobs", {"jobs": [batch_job("batch-0", "SUCCEEDED"), batch_job("batch-1", "RUNNABLE")]})
        batch.add_response("terminate_job", {}, {"jobId": "batch-1", "reason": "task killed"})

        ops.terminate(handle, "task killed")

        s3control.assert_no_pending_responses()
        batch.assert_no_pending_responses()


def test_submit_refuses_plans_it_cannot_run(s3, make_bucket, transfer):
    plan, films, stills, work = transfer
    with pytest.raises(ValueError, match="needs function_arn .the driver Lambda. and role_arn"):
        backend(function_arn=None).submit(plan)

    mixed = f"s3://{work}/manifests/mixed.csv"
    upload_manifest(s3, [ManifestRow(films, "a", "v1"), ManifestRow(films, "b")], mixed)
    ops = backend()
    with pytest.raises(ValueError, match=f"mixes rows with and without a version id for bucket.s. {films}"):
        ops.submit(TransferPlan(TRANSFER_ID, mixed, plan.options, 1, plan.report_uri))

    empty = f"s3://{work}/manifests/empty.csv"
    upload_manifest(s3, [], empty)
    with pytest.raises(ValueError, match="has no rows: nothing to copy"):
        ops.submit(TransferPlan(TRANSFER_ID, empty, plan.options, 1, plan.report_uri))


def test_account_id_defaults_to_the_connections_account(s3_server):
    assert backend(account_id=None).account_id == "123456789012"  # moto's STS GetCallerIdentity


def put_completion_report(s3, work: str, bucket: str, job_id: str, rows: list[tuple]) -> None:
    """A job's completion report as S3 Batch Operations writes it (``Report_CSV_20180820``): result CSVs of the
    job's succeeded and failed tasks and the ``manifest.json`` listing them, under the job's report prefix."""
    folder = f"reports/{TRANSFER_ID}/s3-batch-operations/{bucket}/job-{job_id}"
    results = []
    for status in ("succeeded", "failed"):
        body = "".join(f"{bucket},{key},,{status},200,{code},\"{said}\"\n" for key, status_, code, said in rows
                       if status_ == status).encode()
        key = f"{folder}/results/{hashlib.sha1(body).hexdigest()}.csv"
        s3.put_object(Bucket=work, Key=key, Body=body)
        results.append({"TaskExecutionStatus": status, "Bucket": work, "MD5Checksum": hashlib.md5(body).hexdigest(),
                        "Key": key})
    s3.put_object(Bucket=work, Key=f"{folder}/manifest.json", Body=json.dumps({
        "Format": "Report_CSV_20180820", "ReportCreationDate": "2026-11-01T17:48:39.725Z", "Results": results,
        "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}).encode())


def test_the_monitor_merges_the_completion_reports_and_names_failed_keys(s3, transfer, aws_connection):
    from airflow_provider_mxtransfer.compat import AirflowException
    from airflow_provider_mxtransfer.monitor import TransferMonitor
    from airflow_provider_mxtransfer.transfer import transfer_xcom

    plan, films, stills, work = transfer
    dst = plan.options.destination_bucket
    denied = f"AccessDenied: copy s3://{films}/a b/2.mov to s3://{dst}/in/a b/2.mov: Access Denied"
    put_completion_report(s3, work, films, "job-films", [
        ("a+b/1.mov", "succeeded", "", f"copied to s3://{dst}/in/a b/1.mov: CopyObject; verified size and ETag"),
        ("a+b/2.mov", "failed", "PermanentFailure", denied)])
    put_completion_report(s3, work, stills, "job-stills", [
        ("%C3%A9/1.jpg", "succeeded", "", f"copied to s3://{dst}/in/é/1.jpg: CopyObject; verified size and ETag"),
        ("%C3%A9/2.jpg", "succeeded", "", f"already identical at s3://{dst}/in/é/2.jpg: destination already matches")])
    handle = {"backend": "s3-batch-operations", "job_ids": ["job-films", "job-stills"], "shard_count": 2,
              "s3_batch_operations_job_id": "job-films", "account_id": ACCOUNT}
    monitor = TransferMonitor(transfer_xcom(TRANSFER_ID, plan.manifest_uri, plan.report_uri, plan.destination_uri,
                                            handle), aws_conn_id=aws_connection)
    with Stubber(monitor.backend.s3control.conn) as s3control:
        s3control.add_response("describe_job", describe("job-films", "Complete", failed=1, total=2))
        s3control.add_response("describe_job", describe("job-stills", "Complete", total=2))
        status = monitor.backend.status(monitor.transfer)

    with pytest.raises(AirflowException) as failure:
        monitor.finish(status)

    message = str(failure.value)
    assert message.startswith(f"transfer {TRANSFER_ID} failed: 1 of 2 shards failed (0); 1 objects failed; report "
                              f"{plan.report_uri}transfer.csv")
    assert f"shard 0: s3://{films}/a b/2.mov: copy s3://{films}/a b/2.mov to s3://{dst}/in/a b/2.mov: Access Denied" in message
    totals = json.loads(s3.get_object(Bucket=work, Key=f"reports/{TRANSFER_ID}/transfer.json")["Body"].read())
    assert {name: totals[name] for name in ("rows", "succeeded", "skipped", "failed", "failures_by_code",
                                            "shard_count", "missing_shards")} == {
        "rows": 4, "succeeded": 2, "skipped": 1, "failed": 1, "failures_by_code": {"AccessDenied": 1},
        "shard_count": 2, "missing_shards": []}
    merged = s3.get_object(Bucket=work, Key=f"reports/{TRANSFER_ID}/transfer.csv")["Body"].read().decode()
    assert [line.split(",")[2] for line in merged.splitlines()[1:]] == ["a b/1.mov", "a b/2.mov", "é/1.jpg", "é/2.jpg"]


def test_a_hand_off_record_that_is_not_one_fails_the_status_naming_it(s3, transfer):
    plan, films, stills, work = transfer
    key = f"reports/{TRANSFER_ID}/{HANDOFF_RECORDS}{0:032x}.json"
    s3.put_object(Bucket=work, Key=key, Body=b"<html>not a record</html>")
    ops = backend(account_id=None)
    handle = {"job_ids": ["job-films"], "account_id": ACCOUNT, "report_uri": plan.report_uri}
    with Stubber(ops.s3control.conn) as s3control:
        s3control.add_response("describe_job", describe("job-films", "Complete"), {"AccountId": ACCOUNT,
                                                                                   "JobId": "job-films"})
        with pytest.raises(ValueError, match=f"s3://{work}/{key} is not a hand-off record of the driver"):
            ops.status(handle)
