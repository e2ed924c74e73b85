"""Deployment and DAG meet: each stack deployed into moto's CloudFormation runs a real transfer of the provider's
``batch`` backend, with the job queue and job definition the DAGs read from the stacks file ``make outputs``
writes (``stacks_config_file``, from ``describe_stacks`` by ``infra/stack_outputs.py``).

The DAGs are the provider tests' ``mxt_batch_*`` (``tests/provider/dags``): ``S3BatchCopyOperator(compute="batch")``
submits to the stack's queue, a stand-in for AWS Batch runs the submitted worker command once per
``AWS_BATCH_JOB_ARRAY_INDEX`` (moto's simple Batch mode cannot run containers) and ``BatchFleetSensor`` merges
the shards' reports.
"""

from __future__ import annotations

import json

import pytest
from infra_testlib import unique

from airflow_provider_mxtransfer.config import STACK_ENV, STACKS_FILE_ENV, stack_defaults
from airflow_provider_mxtransfer.transfer import transfer_id_for
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.s3uri import S3Uri

pytestmark = pytest.mark.usefixtures("airflow_db", "aws_connection")
SIZES = [100 + i for i in range(7)]
REF = "Ref::"


@pytest.mark.parametrize(("side", "dag_id"), [("subscriber", "mxt_batch_deferred"), ("publisher", "mxt_batch_poke")])
def test_the_stack_from_the_stacks_file_runs_a_transfer_end_to_end(side, dag_id, request, monkeypatch, s3,
                                                                     aws_client, stacks_config_file):
    import mxtransfer_test_dags

    info = request.getfixturevalue(f"{side}_stack_info")
    monkeypatch.delenv(STACKS_FILE_ENV, raising=False)
    monkeypatch.setenv(STACK_ENV, side)  # the file lists both stacks
    stack = stack_defaults(stacks_config_file)
    assert stack["job_queue"] == info.outputs["JobQueueArn"]

    source = info.buckets["source_a"]  # SourceLocations: <source_a>/media/, <source_b>/
    keys = [f"media/{unique('clip')} {i}.mov" for i in range(len(SIZES))]
    for key, size in zip(keys, SIZES):
        s3.put_object(Bucket=source, Key=key, Body=b"x" * size)
    manifest = f"{stack['manifests']}{side}/manifest.csv"
    upload_manifest(s3, [ManifestRow(source, key, size=size) for key, size in zip(keys, SIZES)], manifest)
    destination = S3Uri.parse(info.outputs["DestinationUri"])

    run = getattr(mxtransfer_test_dags, dag_id.replace("mxt_", "")).test(run_conf={
        "manifest_uri": manifest, "destination": str(destination), "report_root": stack["reports"],
        "source_prefix": "media/", "shard_count": 3,
        "job_queue": stack["job_queue"], "job_definition": stack["job_definition"]})
    assert run.state == "success"

    transfer_id = transfer_id_for(dag_id, run.run_id, "copy")
    for key, size in zip(keys, SIZES):
        copied = s3.head_object(Bucket=destination.bucket, Key=destination.key + key[len("media/"):])
        assert copied["ContentLength"] == size
    report = S3Uri.parse(stack["reports"]).join(f"{transfer_id}/")
    totals = json.loads(s3.get_object(Bucket=report.bucket, Key=f"{report.key}transfer.json")["Body"].read())
    assert (totals["rows"], totals["succeeded"], totals["failed"], totals["shards_reported"]) == (7, 7, 0, 3)
    merged = s3.get_object(Bucket=report.bucket, Key=f"{report.key}transfer.csv")["Body"].read().decode()
    assert merged.startswith("line,bucket,key") and merged.count("\n") == 8

    batch = aws_client("batch")
    (summary,) = [job for job in batch.list_jobs(jobQueue=info.outputs["JobQueueArn"], filters=[
        {"name": "JOB_NAME", "values": [f"mxtransfer-{transfer_id}"]}])["jobSummaryList"] if ":" not in job["jobId"]]
    job = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]
    (definition,) = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    assert definition["jobDefinitionName"] == info.outputs["JobDefinitionName"]

    # The job definition's placeholders are the parameters the backend submits (plus transferId, which labels
    # the job), each with a default ...
    command = definition["containerProperties"]["command"]
    placeholders = {part[len(REF):] for part in command if part.startswith(REF)}
    assert placeholders == set(definition["parameters"]) == set(job["parameters"]) - {"transferId"}
    assert {name: job["parameters"][name] for name in placeholders} == {
        "manifest": manifest, "destination": str(destination), "report": str(report), "shardCount": "3"}
    # ... and, filled in as AWS Batch does, the definition's command is the one the backend's override ran
    # (which only adds the transfer's copy options).
    filled = [job["parameters"][part[len(REF):]] if part.startswith(REF) else part for part in command]
    assert job["container"]["command"][:len(filled)] == filled
