"""The ``batch`` backend: one AWS Batch array job per transfer, one child per shard, running the worker image."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

from airflow_provider_mxtransfer.backends import FAILED, RUNNING, SUCCEEDED, FleetStatus
from airflow_provider_mxtransfer.links.transfer import BATCH_LOG_GROUP, log_url
from airflow_provider_mxtransfer.transfer import TransferPlan
from mxtransfer_worker.report import ShardReports

#: Job states before completion; a transfer with a job in one of them is reattached to, never resubmitted.
IN_FLIGHT = BatchClientHook.INTERMEDIATE_STATES
STARTED = ("STARTING", "RUNNING")
#: How many failed children are described for their log streams and reasons.
DESCRIBED_FAILURES = 10
#: AWS Batch's largest array job: one child per shard.
MAX_ARRAY_SIZE = 10_000


def job_name_for(transfer_id: str) -> str:
    """The deterministic AWS Batch job name of a transfer (how a retry finds the job it submitted)."""
    return f"mxtransfer-{transfer_id}"[:128]


class BatchBackend:
    """Submits a transfer as an AWS Batch array job (a plain job for one shard) to ``job_queue`` with
    ``job_definition`` (the worker image); ``environment`` adds variables to the worker's container."""

    name = "batch"

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None,
                 job_queue: str | None = None, job_definition: str | None = None,
                 environment: dict[str, str] | None = None) -> None:
        self.hook = BatchClientHook(aws_conn_id=aws_conn_id, region_name=region_name, verify=verify,
                                    config=botocore_config)
        self.job_queue = job_queue
        self.job_definition = job_definition
        self.environment = environment or {}

    def _require_queue(self) -> str:
        if not self.job_queue:
            raise ValueError("the batch backend needs job_queue (the AWS Batch job queue of the workers)")
        return self.job_queue

    def find_existing(self, transfer_id: str) -> dict | None:
        name = job_name_for(transfer_id)
        in_flight = []
        for page in self.hook.client.get_paginator("list_jobs").paginate(
                jobQueue=self._require_queue(), filters=[{"name": "JOB_NAME", "values": [name]}]):
            in_flight += [job for job in page["jobSummaryList"] if job["jobName"] == name
                          and job["status"] in IN_FLIGHT and not _is_child(job)]
        if not in_flight:
            return None
        newest = max(in_flight, key=lambda summary: summary.get("createdAt", 0))
        job = self.hook.client.describe_jobs(jobs=[newest["jobId"]])["jobs"][0]
        return self._handle(job["jobId"], name, job.get("arrayProperties", {}).get("size", 1))

    def submit(self, plan: TransferPlan) -> dict:
        if not self.job_definition:
            raise ValueError("the batch backend needs job_definition (the worker's AWS Batch job definition)")
        if plan.shard_count > MAX_ARRAY_SIZE:
            raise ValueError(f"transfer {plan.transfer_id}: {plan.shard_count:,} shards, but an AWS Batch array job "
                             f"has at most {MAX_ARRAY_SIZE:,} children; lower shard_count (or max_shards)")
        name = job_name_for(plan.transfer_id)
        environment = {**self.environment, "MXTRANSFER_TRANSFER_ID": plan.transfer_id}
        arguments = {
            "jobName": name, "jobQueue": self._require_queue(), "jobDefinition": self.job_definition,
            "parameters": {"transferId": plan.transfer_id, "manifest": plan.manifest_uri,
                           "destination": plan.destination_uri, "report": plan.report_uri,
                           "shardCount": str(plan.shard_count)},
            "containerOverrides": {"command": plan.worker_command(),
                                   "environment": [{"name": key, "value": value}
                                                   for key, value in sorted(environment.items())]},
            "tags": plan.tags, "propagateTags": True,
        }
        if plan.shard_count > 1:
            arguments["arrayProperties"] = {"size": plan.shard_count}
        job_id = self.hook.client.submit_job(**arguments)["jobId"]
        return self._handle(job_id, name, plan.shard_count)

    def _handle(self, job_id: str, name: str, shard_count: int) -> dict:
        return {"backend": self.name, "job_ids": [job_id], "job_name": name, "job_queue": self.job_queue,
                "shard_count": shard_count}

    def status(self, transfer: dict) -> FleetStatus:
        client = self.hook.client
        job = client.describe_jobs(jobs=[transfer["job_ids"][0]])["jobs"][0]
        failed = []
        if _has_failures(job):
            failed = _failed_children(job, [summary for page in client.get_paginator("list_jobs").paginate(
                arrayJobId=job["jobId"], jobStatus="FAILED") for summary in page["jobSummaryList"]])
            if failed and "arrayProperties" in job:
                failed = client.describe_jobs(jobs=[child["jobId"] for child in failed[:DESCRIBED_FAILURES]])["jobs"]
        return self._status(job, failed, transfer["shard_count"])

    async def astatus(self, transfer: dict) -> FleetStatus:
        async with await self.hook.get_async_conn() as client:
            job = (await client.describe_jobs(jobs=[transfer["job_ids"][0]]))["jobs"][0]
            failed = []
            if _has_failures(job):
                summaries = []
                async for page in client.get_paginator("list_jobs").paginate(arrayJobId=job["jobId"],
                                                                             jobStatus="FAILED"):
                    summaries += page["jobSummaryList"]
                failed = _failed_children(job, summaries)
                if failed and "arrayProperties" in job:
                    ids = [child["jobId"] for child in failed[:DESCRIBED_FAILURES]]
                    failed = (await client.describe_jobs(jobs=ids))["jobs"]
        return self._status(job, failed, transfer["shard_count"])

    def _status(self, job: dict, failed_jobs: list[dict], shard_count: int) -> FleetStatus:
        """The fleet's state from the parent job and the descriptions of (some of) its failed children."""
        summary = job.get("arrayProperties", {}).get("statusSummary")
        if summary is None:  # a single job is shard 0
            summary = {job["status"]: 1}
        failed_shards = sorted(_index(child) for child in failed_jobs)
        counts = {"succeeded": summary.get("SUCCEEDED", 0), "failed": summary.get("FAILED", 0),
                  "running": sum(summary.get(state, 0) for state in STARTED)}
        if job["status"] in IN_FLIGHT:
            state = RUNNING
        elif job["status"] == "FAILED" or counts["failed"]:
            state = FAILED
        else:
            state = SUCCEEDED
        log_urls = {}
        for child in failed_jobs:
            stream = child.get("container", {}).get("logStreamName")
            if stream:
                options = child.get("container", {}).get("logConfiguration", {}).get("options", {})
                log_urls[_index(child)] = log_url(options.get("awslogs-region", self.hook.conn_region_name),
                                                  options.get("awslogs-group", BATCH_LOG_GROUP), stream,
                                                  self.hook.conn_partition)
        reason = job.get("statusReason", "") if state == FAILED else ""
        return FleetStatus(state, shard_count, **counts, failed_shards=failed_shards, log_urls=log_urls,
                           reason=reason)

    def report_sources(self, transfer: dict) -> list:
        return [ShardReports(transfer["report_uri"], transfer["shard_count"])]

    def terminate(self, transfer: dict, reason: str) -> None:
        # Terminating an array job terminates its children; finished jobs are not affected.
        for job_id in transfer["job_ids"]:
            self.hook.client.terminate_job(jobId=job_id, reason=reason)


def _has_failures(job: dict) -> bool:
    return job["status"] == "FAILED" or job.get("arrayProperties", {}).get("statusSummary", {}).get("FAILED", 0) > 0


def _failed_children(job: dict, children: list[dict]) -> list[dict]:
    """The failed children of an array job, or the job itself when it is a single (one-shard) job."""
    return children if "arrayProperties" in job else ([job] if job["status"] == "FAILED" else [])


def _is_child(job: dict) -> bool:
    """Whether a job is a child of an array job (ids ``<parent id>:<index>``)."""
    return "index" in job.get("arrayProperties", {}) or ":" in job["jobId"]


def _index(job: dict) -> int:
    """The shard a job runs: its array index (children's ids are ``<parent id>:<index>``), 0 for a single job."""
    index = job.get("arrayProperties", {}).get("index")
    if index is None and ":" in job["jobId"]:
        index = job["jobId"].rpartition(":")[2]
    return int(index or 0)
