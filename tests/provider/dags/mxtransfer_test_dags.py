"""Test DAGs: copy a manifest with S3BatchCopyOperator, let "AWS Batch" (the worker, run in-process) do the
shards, and wait with BatchFleetSensor in poke or deferrable mode. Inputs come from the run's conf."""

from __future__ import annotations

import boto3
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mxtransfer.operators.copy import S3BatchCopyOperator
from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor

COPY_ARGUMENTS = {
    "manifest_uri": "{{ dag_run.conf['manifest_uri'] }}",
    "destination": "{{ dag_run.conf['destination'] }}",
    "report_root": "{{ dag_run.conf['report_root'] }}",
    "shard_count": "{{ dag_run.conf.get('shard_count') }}",
    "copy_options": {"source_prefix": "{{ dag_run.conf['source_prefix'] }}", "copy_annotations": False,
                     "object_concurrency": 4, "part_concurrency": 4},
}


@task
def aws_batch(transfer: dict) -> list[int]:
    """Stand-in for AWS Batch's compute: run the submitted job's command for each array index."""
    from provider_helpers import run_submitted_workers

    codes = run_submitted_workers(boto3.client("batch"), transfer["job_ids"][0])
    return [codes[index] for index in sorted(codes)]


def batch_dag(dag_id: str, deferrable: bool) -> DAG:
    with DAG(dag_id, schedule=None, render_template_as_native_obj=True) as dag:
        copy = S3BatchCopyOperator(task_id="copy", compute="batch", job_queue="{{ dag_run.conf['job_queue'] }}",
                                   job_definition="{{ dag_run.conf['job_definition'] }}", **COPY_ARGUMENTS)
        wait = BatchFleetSensor(task_id="wait", transfer=copy.output, deferrable=deferrable, poke_interval=0.1,
                                poll_interval=0.1, timeout=60)
        aws_batch(copy.output) >> wait
    return dag


batch_poke = batch_dag("mxt_batch_poke", deferrable=False)
batch_deferred = batch_dag("mxt_batch_deferred", deferrable=True)

with DAG("mxt_local", schedule=None, render_template_as_native_obj=True) as local:
    local_copy = S3BatchCopyOperator(task_id="copy", compute="local", **COPY_ARGUMENTS)
    BatchFleetSensor(task_id="wait", transfer=local_copy.output, poke_interval=0.1, timeout=60)

with DAG("mxt_local_retry", schedule=None, render_template_as_native_obj=True) as local_retry:
    retry_copy = S3BatchCopyOperator(task_id="copy", compute="local", retry_failed="{{ dag_run.conf['retry_failed'] }}",
                                     **COPY_ARGUMENTS)
    BatchFleetSensor(task_id="wait", transfer=retry_copy.output, poke_interval=0.1, timeout=60)
