"""What AWS Batch would do with a submitted transfer: run the worker's command once per array index."""

from __future__ import annotations

import os
from unittest import mock

from moto.batch.models import batch_backends
from moto.core import DEFAULT_ACCOUNT_ID

from mxtransfer_worker.cli import main


def run_submitted_workers(batch_client, job_id: str, indexes: list[int] | None = None) -> dict[int, int]:
    """Run, in this process, the command the job was submitted with, with ``AWS_BATCH_JOB_ARRAY_INDEX`` set for
    each child (or those of ``indexes``) as AWS Batch sets it, and mark children whose worker exited non-zero
    FAILED in moto (which finishes simple-mode jobs at submission). Returns the exit code by shard index."""
    job = batch_client.describe_jobs(jobs=[job_id])["jobs"][0]
    command = job["container"]["command"]
    assert command[0] == "mxtransfer-worker"
    size = job.get("arrayProperties", {}).get("size", 1)
    codes = {}
    for index in range(size) if indexes is None else indexes:
        with mock.patch.dict(os.environ, {"AWS_BATCH_JOB_ARRAY_INDEX": str(index)}):
            codes[index] = main(command[1:])
        if codes[index]:
            set_job_status(f"{job_id}:{index}" if size > 1 else job_id, "FAILED")
    return codes


def set_job_status(job_id: str, status: str) -> None:
    """Put a job of moto's Batch, and the children of an array job, in ``status`` (simple mode cannot leave jobs
    running or fail one child)."""
    job = batch_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_job_by_id(job_id)
    for each in [job, *(job._child_jobs or [])]:
        each.status = status
