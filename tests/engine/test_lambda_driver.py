"""The S3 Batch Operations driver Lambda, invoked with real-looking S3 Batch events against moto's server.

Events follow the documented formats (schema 1.0: ``s3BucketArn``; schema 2.0: ``s3Bucket`` and the job's
``userArguments``), with keys URL-encoded the way S3 Batch Operations sends them (space as ``+``). Large objects
are handed to AWS Batch in moto's server (Batch without Docker: jobs are accepted and described, never run).
"""

from __future__ import annotations

import io
import json
import re
import urllib.request
import uuid

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from urllib3 import HTTPResponse

from mxtransfer_worker import lambda_driver
from mxtransfer_worker.cli import _parser, options_from_args
from mxtransfer_worker.lambda_driver import (
    HANDOFF_RECORDS,
    DriverConfig,
    handle_event,
    handler,
    handoff_name,
    settings_for,
    user_arguments,
)
from mxtransfer_worker.manifest import open_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3uri import S3Uri

INVOCATION_ID = "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo"
JOB_ID = "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"
TASK_ID = "dGFza2lkZ29lc2hlcmUK"
#: "Season 1/Épisode+1 (final).mov" as S3 Batch Operations sends it: UTF-8 %XX escapes, space as "+".
KEY = "Season 1/Épisode+1 (final).mov"
ENCODED_KEY = "Season+1/%C3%89pisode%2B1+%28final%29.mov"
NO_RETRY = json.dumps({"max_attempts": 1, "throttled_attempts": 0, "retry_base_delay": 0})


def event_v1(bucket: str, encoded_key: str, version_id: str | None = None) -> dict:
    return {"invocationSchemaVersion": "1.0", "invocationId": INVOCATION_ID, "job": {"id": JOB_ID},
            "tasks": [{"taskId": TASK_ID, "s3Key": encoded_key, "s3VersionId": version_id,
                       "s3BucketArn": f"arn:aws:s3:::{bucket}"}]}


def event_v2(bucket: str, encoded_key: str, user_arguments: dict, version_id: str | None = None,
             job_id: str = JOB_ID) -> dict:
    return {"invocationSchemaVersion": "2.0", "invocationId": INVOCATION_ID,
            "job": {"id": job_id, "userArguments": user_arguments},
            "tasks": [{"taskId": TASK_ID, "s3Key": encoded_key, "s3VersionId": version_id, "s3Bucket": bucket}]}


def only_result(response: dict) -> dict:
    assert response["invocationId"] == INVOCATION_ID
    assert response["treatMissingKeysAs"] == "PermanentFailure"
    [result] = response["results"]
    assert result["taskId"] == TASK_ID
    assert len(result["resultString"]) <= lambda_driver.MAX_RESULT_STRING
    return result


@pytest.fixture
def batch(s3_server):
    return boto3.client("batch", endpoint_url=s3_server, region_name="us-east-1")


def test_schema_1_copies_inline_with_settings_from_the_environment(s3, make_bucket, monkeypatch, s3_server):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key=KEY, Body=b"frame" * 100)
    monkeypatch.setenv("MXTRANSFER_DESTINATION", f"s3://{destination}/incoming/")
    lambda_driver._clients.cache_clear()  # the real entry point, with clients made from the environment

    response = handler(event_v1(source, ENCODED_KEY), context=None)

    assert response["invocationSchemaVersion"] == "1.0"
    result = only_result(response)
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith(f"copied to s3://{destination}/incoming/{KEY}: CopyObject; verified")
    assert s3.get_object(Bucket=destination, Key=f"incoming/{KEY}")["Body"].read() == b"frame" * 100


def test_schema_2_copies_the_named_version_with_user_arguments(s3, make_bucket, batch):
    source, destination = make_bucket("src", versioned=True), make_bucket("dst")
    first = s3.put_object(Bucket=source, Key="media/a b.mxf", Body=b"first version")["VersionId"]
    s3.put_object(Bucket=source, Key="media/a b.mxf", Body=b"second version, newer")
    arguments = {"destination": f"s3://{destination}/delivered/", "sourcePrefix": "media/",
                 "options": json.dumps({"storage_class": "STANDARD_IA"})}

    response = handle_event(event_v2(source, "media/a+b.mxf", arguments, version_id=first), s3, batch, {})

    assert response["invocationSchemaVersion"] == "2.0"
    assert only_result(response)["resultCode"] == "Succeeded"
    copy = s3.get_object(Bucket=destination, Key="delivered/a b.mxf")
    assert copy["Body"].read() == b"first version"
    assert copy["StorageClass"] == "STANDARD_IA"


def test_an_inline_copy_heads_its_source_once(s3, make_bucket, batch):
    # the driver's HEAD (to choose between copying inline and handing off) is the copy's first attempt's too
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key=KEY, Body=b"x" * 10)
    heads = []
    s3.meta.events.register("before-send.s3.HeadObject", lambda request, **_: heads.append(request.url))
    event = event_v2(source, ENCODED_KEY, {"destination": f"s3://{destination}/"})

    assert only_result(handle_event(event, s3, batch, {}))["resultCode"] == "Succeeded"
    assert [url for url in heads if f"/{source}/" in url] == [heads[0]] and len(heads) == 2  # + the destination's


def test_user_arguments_override_the_environment_and_a_second_run_skips(s3, make_bucket, batch):
    source, destination, elsewhere = make_bucket("src"), make_bucket("dst"), make_bucket("other")
    s3.put_object(Bucket=source, Key=KEY, Body=b"x" * 10)
    environ = {"MXTRANSFER_DESTINATION": f"s3://{elsewhere}/"}
    event = event_v2(source, ENCODED_KEY, {"destination": f"s3://{destination}/"})

    assert only_result(handle_event(event, s3, batch, environ))["resultCode"] == "Succeeded"
    again = only_result(handle_event(event, s3, batch, environ))

    assert again["resultCode"] == "Succeeded"
    assert again["resultString"].startswith(f"already identical at s3://{destination}/{KEY}: destination already matches")
    assert s3.list_objects_v2(Bucket=elsewhere).get("KeyCount") == 0


def test_missing_key_is_a_permanent_failure_that_says_so(s3, make_bucket, batch):
    source, destination = make_bucket("src"), make_bucket("dst")

    result = only_result(handle_event(event_v1(source, "gone/clip+1.mov"), s3, batch,
                                      {"MXTRANSFER_DESTINATION": f"s3://{destination}/"}))

    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith(f"NoSuchKey: read s3://{source}/gone/clip 1.mov: NoSuchKey: the object "
                                             "does not exist")


def test_throttling_is_a_temporary_failure(s3, make_bucket, batch):
    """Every CopyObject is answered 503 SlowDown (a before-send hook, which the native copy client honours too)."""
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key=KEY, Body=b"x")
    copy_attempts = []

    def slow_down(request, **kwargs):
        copy_attempts.append(request.url)
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, {}, HTTPResponse(io.BytesIO(body), preload_content=False))

    s3.meta.events.register("before-send.s3.CopyObject", slow_down)
    arguments = {"destination": f"s3://{destination}/", "options": NO_RETRY}

    result = only_result(handle_event(event_v2(source, ENCODED_KEY, arguments), s3, batch, {}))

    assert len(copy_attempts) == 1
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("SlowDown: copy ")
    assert "Please reduce your request rate." in result["resultString"]
    assert s3.list_objects_v2(Bucket=destination).get("KeyCount") == 0


@pytest.fixture
def batch_queue(s3_server, batch):
    """A job queue and the worker job definition in moto's Batch, which accepts jobs without running them."""
    config = json.dumps({"batch": {"use_docker": False}}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/moto-api/config", data=config, method="POST"))
    iam = boto3.client("iam", endpoint_url=s3_server, region_name="us-east-1")
    name = f"mx-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=f"{name}-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName=f"{name}-ce", type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)
    batch.create_job_queue(jobQueueName=f"{name}-queue", state="ENABLED", priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}])
    batch.register_job_definition(jobDefinitionName=f"{name}-worker", type="container", containerProperties={
        "image": "mxtransfer-worker", "command": ["mxtransfer-worker"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]})
    return f"{name}-queue", f"{name}-worker"


def test_large_object_is_handed_to_aws_batch_once_and_recorded(s3, make_bucket, batch, batch_queue):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    s3.put_object(Bucket=source, Key=KEY, Body=b"y" * 4096)
    queue, definition = batch_queue
    arguments = {"destination": f"s3://{destination}/in/", "report": f"s3://{work}/reports/t-42/",
                 "jobQueue": queue, "jobDefinition": definition, "transferId": "t-42", "inlineMaxBytes": "1024",
                 "options": json.dumps({"overwrite": True, "part_size": 8 * 2**20})}
    event = event_v2(source, ENCODED_KEY, arguments)

    result = only_result(handle_event(event, s3, batch, {}))

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("submitted to AWS Batch job ")
    assert "4,096 bytes, over the driver's inline limit of 1,024 bytes" in result["resultString"]
    name = handoff_name(JOB_ID, TASK_ID)
    record = json.loads(s3.get_object(Bucket=work, Key=f"reports/t-42/{HANDOFF_RECORDS}{name}.json")["Body"].read())
    assert record["batchJobId"] in result["resultString"]
    assert record["transferId"] == "t-42" and record["s3BatchJobId"] == JOB_ID and record["taskId"] == TASK_ID
    assert record["source"] == {"bucket": source, "key": KEY, "versionId": None, "size": 4096}
    [row] = open_manifest(s3, record["manifest"])
    assert (row.bucket, row.key, row.size) == (source, KEY, 4096)
    [job] = batch.describe_jobs(jobs=[record["batchJobId"]])["jobs"]
    assert job["jobName"] == f"mxtransfer-t-42-{name}" and job["jobQueue"].endswith(queue)
    assert job["tags"] == {"mxtransfer:transfer-id": "t-42", "mxtransfer:s3-batch-job": JOB_ID}
    command = job["container"]["command"]
    assert command[:2] == ["mxtransfer-worker", "copy"]
    worker_options = options_from_args(_parser().parse_args(command[1:]))
    assert (worker_options.destination_bucket, worker_options.destination_prefix) == (destination, "in/")
    assert worker_options.overwrite and worker_options.part_size == 8 * 2**20
    assert command[command.index("--report") + 1] == f"s3://{work}/reports/t-42/{HANDOFF_RECORDS}{name}/"
    assert s3.list_objects_v2(Bucket=destination).get("KeyCount") == 0  # the Lambda did not copy it

    retried = only_result(handle_event(event, s3, batch, {}))  # S3 Batch Operations retries the same task

    assert record["batchJobId"] in retried["resultString"]
    assert [summary["jobId"] for summary in batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
            ] == [record["batchJobId"]]


def test_large_object_without_a_batch_queue_fails_permanently(s3, make_bucket, batch):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key=KEY, Body=b"z" * 2048)
    arguments = {"destination": f"s3://{destination}/", "inlineMaxBytes": "1000"}

    result = only_result(handle_event(event_v2(source, ENCODED_KEY, arguments), s3, batch, {}))

    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith(f"HandOffNotConfigured: s3://{source}/{KEY} is 2,048 bytes")


@pytest.mark.parametrize("arguments, expected", [
    ({}, "no destination: pass userArguments.destination or set MXTRANSFER_DESTINATION"),
    ({"destination": "s3://dst-bucket/", "options": '{"storage_klass": "GLACIER"}'}, "unknown copy option(s) storage_klass"),
    ({"destination": "s3://dst-bucket/", "options": "[1]"}, "options must be a JSON object"),
    ({"destination": "s3://dst-bucket/", "destinaton": "s3://typo/"}, "unknown setting(s) destinaton"),
    ({"destination": "s3://dst-bucket/", "options": '{"sse": "KMS"}'}, "sse must be 'AES256' or 'aws:kms'"),
    ({"destination": "s3://dst-bucket/", "options": '{"part_size": "64MiB"}'}, "copy option part_size must be a JSON int, not '64MiB'"),
    ({"destination": "s3://dst-bucket/", "options": '{"overwrite": 1}'}, "overwrite must be a JSON bool, not 1"),
    ({"destination": "s3://dst-bucket/", "inlineMaxBytes": "1 GiB"}, "inlineMaxBytes must be a whole number"),
])
def test_configuration_errors_fail_every_task_permanently(arguments, expected):
    event = event_v2("src-bucket", "a", arguments)
    event["tasks"].append({**event["tasks"][0], "taskId": "second"})

    response = handle_event(event, s3=None, batch=None, environ={})

    assert [result["taskId"] for result in response["results"]] == [TASK_ID, "second"]
    for result in response["results"]:
        assert result["resultCode"] == "PermanentFailure"
        assert result["resultString"].startswith("DriverConfigurationError: ")
        assert expected in result["resultString"]


def test_unknown_schema_version_and_bad_tasks_are_permanent_failures(s3, batch):
    event = event_v1("src-bucket", "a")
    event["invocationSchemaVersion"] = "3.0"
    [result] = handle_event(event, s3, batch, {"MXTRANSFER_DESTINATION": "s3://dst-bucket/"})["results"]
    assert result["resultCode"] == "PermanentFailure" and "'3.0' is not one of 1.0, 2.0" in result["resultString"]

    broken = event_v1("src-bucket", "bad%ZZescape")
    [result] = handle_event(broken, s3, batch, {"MXTRANSFER_DESTINATION": "s3://dst-bucket/"})["results"]
    assert result["resultCode"] == "PermanentFailure"
    assert result["resultString"].startswith("InvalidTask: bad URL encoding in key 'bad%ZZescape'")


def test_user_arguments_round_trip_and_override_the_environment():
    options = CopyOptions(destination_bucket="dst-bucket", destination_prefix="p/", source_prefix="s/",
                          storage_class="GLACIER_IR", sse="aws:kms", sse_kms_key_id="alias/k", overwrite=True,
                          copy_tags=False, part_size=128 * 2**20, max_attempts=6, retry_base_delay=0.5)
    arguments = user_arguments(options, report_uri="s3://work/r/t-1/", transfer_id="t-1", job_queue="q",
                               inline_max_bytes=5 * 2**20)
    assert len(arguments) <= 10 and all(len(name) <= 64 for name in arguments)
    environ = {"MXTRANSFER_SOURCE_PREFIX": "env/", "MXTRANSFER_OPTIONS": '{"acl": "public-read"}',
               "MXTRANSFER_JOB_DEFINITION": "stack-worker"}

    config = DriverConfig.from_settings(settings_for({"job": {"userArguments": arguments}}, environ))

    assert config == DriverConfig(options, 5 * 2**20, S3Uri("work", "r/t-1/"), "q", "stack-worker", "t-1")
    plain = user_arguments(CopyOptions(destination_bucket="d-bucket"))
    assert plain == {"destination": "s3://d-bucket/", "sourcePrefix": "", "options": "", "report": "", "transferId": ""}
    assert DriverConfig.from_settings(settings_for({"job": {"userArguments": plain}}, environ)).options == \
        CopyOptions(destination_bucket="d-bucket")
    with pytest.raises(ValueError, match="user argument.s. destination longer than"):
        user_arguments(CopyOptions(destination_bucket="d-bucket", destination_prefix="x" * 1020))


def test_a_hand_off_record_that_is_not_one_is_refused_naming_it(s3, make_bucket, batch, batch_queue):
    source, work = make_bucket("src"), make_bucket("work")
    s3.put_object(Bucket=source, Key=KEY, Body=b"y" * 4096)
    queue, definition = batch_queue
    arguments = {"destination": f"s3://{make_bucket('dst')}/in/", "report": f"s3://{work}/reports/t-43/",
                 "jobQueue": queue, "jobDefinition": definition, "inlineMaxBytes": "1024"}
    record = f"reports/t-43/{HANDOFF_RECORDS}{handoff_name(JOB_ID, TASK_ID)}.json"
    for body, cause in ((b'{"batchJobId": "b-1", "rep', "not JSON"), (b'{"batchJobId": 7}', "it lacks batchJobId")):
        s3.put_object(Bucket=work, Key=record, Body=body)
        with pytest.raises(ValueError, match=re.escape(f"s3://{work}/{record} is not a hand-off record of the "
                                                       f"driver ({cause}")):
            handle_event(event_v2(source, ENCODED_KEY, arguments), s3, batch, {})
    assert [job for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
            for job in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]] == []  # none submitted
