"""The ``s3-batch-operations`` backend: S3 Batch Operations jobs that invoke the driver Lambda on every object.

S3 Batch Operations reads a CSV manifest of one bucket's objects per job, so a transfer gets one job per source
bucket: the plan's manifest is split into per-bucket manifests (written next to it, where the stack's
S3 Batch Operations role may read them), and each job invokes the driver Lambda
(``mxtransfer_worker.lambda_driver``) with invocation schema 2.0 and the transfer's settings as
``UserArguments``. The driver copies small objects itself and hands large ones to AWS Batch, recording each
hand-off under ``<report_uri>/batch-jobs/``; the transfer is finished only when every S3 Batch Operations job
and every recorded AWS Batch job is. Each job writes a completion report of all its tasks under
``<report_uri>/s3-batch-operations/<bucket>``; those reports and the hand-off workers' reports are the
transfer's row reports (``report_sources``).

A job's ``Description`` names the transfer and bucket, which is how ``find_existing`` finds the jobs of a
transfer after a retry, and its ``ClientRequestToken`` is derived from the transfer id, the bucket and the
number of earlier finished jobs of that pair: a retry that submits again after a crash sends the same token
(S3 creates no second job), while a re-run after the jobs finished gets a new job. The plan's ``shard_count``
does not apply: S3 Batch Operations spreads the tasks itself (the driver's reserved concurrency caps them).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from functools import cached_property

from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from botocore.exceptions import ClientError

from airflow_provider_mxtransfer.backends import FAILED, RUNNING, SUCCEEDED, FleetStatus
from airflow_provider_mxtransfer.hooks.s3control import S3ControlHook
from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from airflow_provider_mxtransfer.transfer import TransferPlan
from mxtransfer_worker.lambda_driver import HANDOFF_RECORDS, handoff_record, user_arguments
from mxtransfer_worker.manifest import open_manifest, upload_manifest
from mxtransfer_worker.report import CompletionReport, ShardReports
from mxtransfer_worker.s3uri import S3Uri

log = logging.getLogger(__name__)

#: S3 Batch Operations job statuses (``JobStatus`` in the S3 Control API) by what they mean for a transfer.
QUEUED_STATUSES = ("New", "Preparing", "Ready", "Suspended")
STARTED_STATUSES = ("Active", "Pausing", "Paused", "Completing", "Failing", "Cancelling")
IN_FLIGHT_STATUSES = QUEUED_STATUSES + STARTED_STATUSES
#: AWS Batch states of a handed-off job that is not finished, and those of one that started.
BATCH_IN_FLIGHT = BatchClientHook.INTERMEDIATE_STATES
BATCH_STARTED = ("STARTING", "RUNNING")
#: Where, under the transfer's report prefix, each job's completion report goes (one folder per bucket).
COMPLETION_REPORTS = "s3-batch-operations/"
#: Suffix of the folder of per-bucket manifests, next to the plan's manifest.
BUCKET_MANIFESTS = ".s3-batch-operations/"
#: Every task in the completion report: the driver's answers are the report rows of the objects it copied.
REPORT_SCOPE = "AllTasks"


def description_for(transfer_id: str, bucket: str) -> str:
    """The ``Description`` of the job that copies ``bucket``'s objects for a transfer (at most 256 characters:
    transfer ids have at most 80 and bucket names 63)."""
    return f"mxtransfer {transfer_id} s3://{bucket}"


def client_request_token(transfer_id: str, bucket: str, finished_jobs: int) -> str:
    """The idempotency token of the next job for ``bucket`` after ``finished_jobs`` earlier finished ones."""
    return hashlib.sha256(f"{transfer_id}\0{bucket}\0{finished_jobs}".encode()).hexdigest()  # 64 characters


class S3BatchOperationsBackend:
    """Runs a transfer as S3 Batch Operations ``LambdaInvoke`` jobs, one per source bucket.

    ``function_arn`` is the driver Lambda and ``role_arn`` the role the jobs run as (the stack's
    ``DriverFunctionArn`` and ``S3BatchOperationsRoleArn`` outputs); both are needed to submit, not to watch
    or stop. ``job_queue``, ``job_definition`` and ``inline_max_bytes`` are passed to the driver for its
    hand-offs to AWS Batch (unset, the driver uses its environment). ``account_id`` defaults to the
    connection's account (STS).
    """

    name = "s3-batch-operations"

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None,
                 function_arn: str | None = None, role_arn: str | None = None, account_id: str | None = None,
                 priority: int = 10, job_queue: str | None = None, job_definition: str | None = None,
                 inline_max_bytes: int | None = None) -> None:
        aws = {"aws_conn_id": aws_conn_id, "region_name": region_name, "verify": verify, "config": botocore_config}
        self.s3control = S3ControlHook(**aws)
        self.s3 = S3CopyHook(**aws)
        self.batch = BatchClientHook(**aws)
        self.function_arn = function_arn
        self.role_arn = role_arn
        self._account_id = account_id
        self.priority = priority
        self.job_queue = job_queue
        self.job_definition = job_definition
        self.inline_max_bytes = inline_max_bytes

    @cached_property
    def account_id(self) -> str:
        return self._account_id or self.s3control.account_id

    # -- submit and reattach -------------------------------------------------------------------------------
    def find_existing(self, transfer_id: str) -> dict | None:
        latest = {bucket: jobs[0] for bucket, jobs in self._jobs_by_bucket(transfer_id).items()}
        if not any(job["Status"] in IN_FLIGHT_STATUSES for job in latest.values()):
            return None
        return self._handle([latest[bucket]["JobId"] for bucket in sorted(latest)])

    def submit(self, plan: TransferPlan) -> dict:
        if not self.function_arn or not self.role_arn:
            raise ValueError("the s3-batch-operations backend needs function_arn (the driver Lambda) and role_arn "
                             "(the role S3 Batch Operations jobs run as): see the stack's outputs")
        client = self.s3.get_copy_client()
        buckets = _rows_by_bucket(open_manifest(client, plan.manifest_uri), plan.manifest_uri)
        arguments = user_arguments(plan.options, report_uri=plan.report_uri, transfer_id=plan.transfer_id,
                                   job_queue=self.job_queue or "", job_definition=self.job_definition or "",
                                   inline_max_bytes=self.inline_max_bytes)
        earlier = self._jobs_by_bucket(plan.transfer_id)
        job_ids = []
        for bucket in sorted(buckets):
            manifest = self._bucket_manifest(client, plan, bucket)
            finished = sum(job["Status"] not in IN_FLIGHT_STATUSES for job in earlier.get(bucket, []))
            request = self._create_job_request(plan, bucket, manifest, buckets[bucket].versioned, arguments, finished)
            job_ids.append(self.s3control.conn.create_job(**request)["JobId"])
            log.info("transfer %s: S3 Batch Operations job %s for the %d objects of bucket %s", plan.transfer_id,
                     job_ids[-1], buckets[bucket].rows, bucket)
        return self._handle(job_ids)

    def _bucket_manifest(self, client, plan: TransferPlan, bucket: str) -> dict:
        """Write the manifest of ``bucket``'s rows next to the plan's; returns its ``Manifest.Location``."""
        source = S3Uri.parse(plan.manifest_uri)
        location = S3Uri(source.bucket, f"{source.key}{BUCKET_MANIFESTS}{plan.transfer_id}/{bucket}.csv")
        upload_manifest(client, (row for row in open_manifest(client, plan.manifest_uri) if row.bucket == bucket),
                        str(location))
        head = client.head_object(Bucket=location.bucket, Key=location.key)
        manifest = {"ObjectArn": f"{self._arn(location.bucket)}/{location.key}", "ETag": head["ETag"].strip('"')}
        if head.get("VersionId") and head["VersionId"] != "null":
            manifest["ObjectVersionId"] = head["VersionId"]
        return manifest

    def _create_job_request(self, plan: TransferPlan, bucket: str, manifest: dict, versioned: bool,
                            arguments: dict, finished: int) -> dict:
        report = S3Uri.parse(plan.report_uri).join(f"{COMPLETION_REPORTS}{bucket}")
        tags = {**plan.tags, "mxtransfer:transfer-id": plan.transfer_id, "mxtransfer:source-bucket": bucket}
        return {
            "AccountId": self.account_id,
            "ConfirmationRequired": False,
            "Operation": {"LambdaInvoke": {"FunctionArn": self.function_arn, "InvocationSchemaVersion": "2.0",
                                           "UserArguments": arguments}},
            "Report": {"Bucket": self._arn(report.bucket), "Prefix": report.key, "Format": "Report_CSV_20180820",
                       "Enabled": True, "ReportScope": REPORT_SCOPE},
            "ClientRequestToken": client_request_token(plan.transfer_id, bucket, finished),
            "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820",
                                  "Fields": ["Bucket", "Key", "VersionId"] if versioned else ["Bucket", "Key"]},
                         "Location": manifest},
            "Description": description_for(plan.transfer_id, bucket),
            "Priority": self.priority,
            "RoleArn": self.role_arn,
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
        }

    def _jobs_by_bucket(self, transfer_id: str) -> dict[str, list[dict]]:
        """The S3 Batch Operations jobs of a transfer (S3 lists the last 90 days), by bucket, newest first."""
        prefix = description_for(transfer_id, "")
        jobs: dict[str, list[dict]] = {}
        arguments = {"AccountId": self.account_id, "MaxResults": 1000}
        while True:
            page = self.s3control.conn.list_jobs(**arguments)
            for job in page.get("Jobs", []):
                if job.get("Description", "").startswith(prefix):
                    jobs.setdefault(job["Description"][len(prefix):], []).append(job)
            if not page.get("NextToken"):
                break
            arguments["NextToken"] = page["NextToken"]
        for bucket_jobs in jobs.values():
            bucket_jobs.sort(key=lambda job: job["CreationTime"], reverse=True)
        return jobs

    def _handle(self, job_ids: list[str]) -> dict:
        return {"backend": self.name, "job_ids": job_ids, "shard_count": len(job_ids),
                "s3_batch_operations_job_id": job_ids[0], "account_id": self.account_id}

    def _arn(self, bucket: str) -> str:
        return f"arn:{self.s3control.conn_partition}:s3:::{bucket}"

    # -- watch and stop -------------------------------------------------------------------------------------
    def status(self, transfer: dict) -> FleetStatus:
        account = transfer.get("account_id") or self.account_id
        jobs = [self.s3control.conn.describe_job(AccountId=account, JobId=job_id)["Job"]
                for job_id in transfer["job_ids"]]
        return _fleet_status(jobs, self._handoffs(transfer["report_uri"]), transfer["report_uri"])

    async def astatus(self, transfer: dict) -> FleetStatus:
        # boto3 calls in a worker thread: the triggerer's event loop keeps running meanwhile.
        return await asyncio.to_thread(self.status, transfer)

    def terminate(self, transfer: dict, reason: str) -> None:
        account = transfer.get("account_id") or self.account_id
        for job_id in transfer["job_ids"]:
            try:
                self.s3control.conn.update_job_status(AccountId=account, JobId=job_id,
                                                      RequestedJobStatus="Cancelled", StatusUpdateReason=reason[:256])
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "JobStatusException":
                    raise
                log.info("S3 Batch Operations job %s is already finished; not cancelled", job_id)
        for handoff in self._handoffs(transfer["report_uri"]):
            if handoff["status"] in BATCH_IN_FLIGHT:
                self.batch.client.terminate_job(jobId=handoff["jobId"], reason=reason)

    def report_sources(self, transfer: dict) -> list:
        """Each job's completion report (shards 0..n-1), then each hand-off's worker report, as ``status``
        numbers them."""
        job_ids = transfer["job_ids"]
        reports = S3Uri.parse(transfer["report_uri"]).join(COMPLETION_REPORTS)
        keys = [entry["Key"] for page in self.s3.get_copy_client().get_paginator("list_objects_v2").paginate(
                    Bucket=reports.bucket, Prefix=reports.key) for entry in page.get("Contents", [])]

        def manifest(job_id: str) -> str | None:
            """S3 writes a job's report under ``<prefix>/job-<job id>/``; the prefix names the job's bucket."""
            suffix = f"/job-{job_id}/manifest.json"
            return next((str(S3Uri(reports.bucket, key)) for key in keys if key.endswith(suffix)), None)

        return ([CompletionReport(index, manifest(job_id)) for index, job_id in enumerate(job_ids)] +
                [ShardReports(record["report"], 1, first=len(job_ids) + number)
                 for number, record in enumerate(self._handoff_records(transfer["report_uri"]))])

    def _handoff_records(self, report_uri: str) -> list[dict]:
        """The driver's hand-off records (``lambda_driver``), in record-name order."""
        client = self.s3.get_copy_client()
        records = S3Uri.parse(report_uri).join(HANDOFF_RECORDS)
        keys = [entry["Key"] for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=records.bucket, Prefix=records.key, Delimiter="/")
                for entry in page.get("Contents", []) if entry["Key"].endswith(".json")]
        return [handoff_record(client.get_object(Bucket=records.bucket, Key=key)["Body"].read(),
                               S3Uri(records.bucket, key)) for key in sorted(keys)]

    def _handoffs(self, report_uri: str) -> list[dict]:
        """The AWS Batch jobs the driver handed objects to, from its records: ``jobId``, ``status`` and
        ``statusReason``, in record-name order."""
        job_ids = [record["batchJobId"] for record in self._handoff_records(report_uri)]
        described = {}
        for start in range(0, len(job_ids), 100):  # DescribeJobs takes up to 100 ids
            for job in self.batch.client.describe_jobs(jobs=job_ids[start:start + 100])["jobs"]:
                described[job["jobId"]] = job
        return [{"jobId": job_id, "status": described.get(job_id, {}).get("status", "UNKNOWN"),
                 "statusReason": described.get(job_id, {}).get("statusReason", "")} for job_id in job_ids]


class _BucketRows:
    """Rows of one bucket in a manifest, and how many of them name a version."""

    def __init__(self) -> None:
        self.rows = 0
        self.with_version = 0

    @property
    def versioned(self) -> bool:
        return self.with_version > 0


def _rows_by_bucket(rows, manifest_uri: str) -> dict[str, _BucketRows]:
    """Count a manifest's rows per bucket; ValueError when it is empty or mixes rows with and without version
    ids in one bucket (an S3 Batch Operations manifest declares its columns once)."""
    buckets: dict[str, _BucketRows] = {}
    for row in rows:
        counts = buckets.setdefault(row.bucket, _BucketRows())
        counts.rows += 1
        counts.with_version += row.version_id is not None
    if not buckets:
        raise ValueError(f"manifest {manifest_uri} has no rows: nothing to copy")
    mixed = sorted(bucket for bucket, counts in buckets.items() if 0 < counts.with_version < counts.rows)
    if mixed:
        raise ValueError(f"manifest {manifest_uri} mixes rows with and without a version id for bucket(s) "
                         f"{', '.join(mixed)}; S3 Batch Operations needs one column layout per job: give every "
                         "row of a bucket a version id, or none")
    return buckets


def _fleet_status(jobs: list[dict], handoffs: list[dict], report_uri: str) -> FleetStatus:
    """The transfer's state: its S3 Batch Operations jobs are shards 0..n-1, the AWS Batch jobs the driver
    handed objects to follow them. Running while any of them is in flight; failed if any job failed or had a
    failed task."""
    counts: Counter[str] = Counter()
    failed_shards, reasons = [], []
    for index, job in enumerate(jobs):
        progress = job.get("ProgressSummary", {})
        failed_tasks = progress.get("NumberOfTasksFailed", 0)
        status = job["Status"]
        if status in STARTED_STATUSES:
            counts["running"] += 1
        elif status == "Complete" and not failed_tasks:
            counts["succeeded"] += 1
        elif status not in QUEUED_STATUSES:
            counts["failed"] += 1
            failed_shards.append(index)
            details = "; ".join(f"{item.get('FailureCode', '')}: {item.get('FailureReason', '')}"
                                for item in job.get("FailureReasons", []))
            reasons.append(f"S3 Batch Operations job {job['JobId']} {status}"
                           + (f" with {failed_tasks:,} of {progress.get('TotalNumberOfTasks', 0):,} tasks failed"
                              if failed_tasks else "")
                           + (f" ({details})" if details else ""))
    for offset, handoff in enumerate(handoffs, start=len(jobs)):
        if handoff["status"] == "SUCCEEDED":
            counts["succeeded"] += 1
        elif handoff["status"] in BATCH_STARTED:
            counts["running"] += 1
        elif handoff["status"] not in BATCH_IN_FLIGHT:
            counts["failed"] += 1
            failed_shards.append(offset)
            reasons.append(f"AWS Batch job {handoff['jobId']} (a large object handed off by the driver) "
                           f"{handoff['status']}: {handoff['statusReason'] or 'no reason given'}")
    in_flight = any(job["Status"] in IN_FLIGHT_STATUSES for job in jobs) or any(
        handoff["status"] in BATCH_IN_FLIGHT for handoff in handoffs)
    state = RUNNING if in_flight else FAILED if failed_shards else SUCCEEDED
    reason = ""
    if state == FAILED:
        reason = "; ".join(reasons) + f". Failed tasks are listed in the completion reports under {report_uri}{COMPLETION_REPORTS}"
    return FleetStatus(state, len(jobs) + len(handoffs), succeeded=counts["succeeded"], failed=counts["failed"],
                       running=counts["running"], failed_shards=failed_shards, reason=reason)
