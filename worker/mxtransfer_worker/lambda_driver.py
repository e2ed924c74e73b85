"""The driver Lambda of the ``s3-batch-operations`` backend: S3 Batch Operations "Invoke AWS Lambda function".

S3 Batch Operations invokes ``handler`` with a batch of tasks (one object each) and expects one result per
task. Objects up to the inline limit are copied right here with the engine's ``ObjectCopier`` (the same
verified copy as the AWS Batch worker, its copy requests through awscrt's native client with
``native_client``); larger ones are handed to the AWS Batch worker queue as a one-row job,
because a Lambda invocation ends after 15 minutes.

Event and response formats (checked against these sources):

- Request, schema 1.0: ``{"invocationSchemaVersion": "1.0", "invocationId", "job": {"id"}, "tasks": [{"taskId",
  "s3Key", "s3VersionId", "s3BucketArn"}]}``; response ``{"invocationSchemaVersion", "treatMissingKeysAs",
  "invocationId", "results": [{"taskId", "resultCode", "resultString"}]}`` with ``resultCode`` one of
  ``Succeeded``, ``TemporaryFailure``, ``PermanentFailure``; S3 saves ``resultString`` in the completion report.
  https://docs.aws.amazon.com/lambda/latest/dg/services-s3-batch.html and
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html
- Schema 2.0 tasks carry the bucket name ``s3Bucket`` instead of ``s3BucketArn``, and ``job`` carries the
  job's ``userArguments`` (a string map, at most 10 entries, keys up to 64 and values up to 1,024 characters;
  2.0 is required to pass them): https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_LambdaInvokeOperation.html;
  a 2.0 example event: https://github.com/aws-powertools/powertools-lambda-python
  (``tests/events/s3BatchOperationEventSchemaV2.json``).
- ``s3Key`` is URL-encoded like the manifest (space as ``+``) and decodes with ``unquote_plus``, as tested
  against S3 Batch Operations in https://github.com/aws-powertools/powertools-lambda-python/pull/3572: the
  engine's ``manifest.decode_key`` does exactly that (strictly).

Configuration. Each setting comes from the job's ``userArguments`` (schema 2.0) or, when a job does not pass it
(and always with schema 1.0, which has no user arguments), from the Lambda's environment (see ``SETTINGS``):
``destination`` (``s3://bucket/prefix/``), ``sourcePrefix``, ``options`` (a JSON object of further
``CopyOptions`` fields, e.g. ``{"storage_class": "STANDARD_IA", "overwrite": true}``), ``inlineMaxBytes``
(default: the options' ``multipart_threshold``, so the Lambda only ever sends single ``CopyObject`` requests),
and for hand-offs ``report`` (``s3://bucket/prefix/`` of the transfer's report), ``jobQueue``,
``jobDefinition`` and ``transferId``.

Hand-offs are answered ``Succeeded`` with the result string "submitted to AWS Batch job <id> ...", not with a
copy that has not happened yet being called done: each hand-off writes a record
``<report>/batch-jobs/<name>.json`` (``HANDOFF_RECORDS``) naming the AWS Batch job, and the provider waits for
every recorded job and reads its worker report before it calls the transfer finished. The S3 Batch Operations
report alone is therefore not the transfer's outcome; the records and worker reports complete it. A
``TemporaryFailure`` until the copy ends was the alternative, but S3 Batch Operations retries those only a few
times, so it cannot wait out a long copy. A retried task finds its record and does not submit a second job.

Packaging: ``make driver-zip`` (infra/infra.mk) zips this package with the worker image's pinned, hash-checked
dependencies (worker/requirements.txt) for the Lambda's platform: boto3/botocore, because the boto3 bundled in
the Lambda runtime is older than the S3 parameters the engine sends (e.g. ``AnnotationDirective``), and awscrt
(a binary abi3 wheel: the copy requests go through its native client, as in the worker), which the runtime lacks.

The stack template takes the zip's bucket and key as parameters; its handler is
``mxtransfer_worker.lambda_driver.handler``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Mapping

import boto3
from botocore.exceptions import ClientError

from .cli import copy_arguments
from .copier import FAILED, SKIPPED, CopyResult, ObjectCopier
from .errors import classify
from .jsondoc import json_object
from .manifest import ManifestRow, decode_key, upload_manifest
from .options import CopyOptions
from .report import DRIVER_COPIED, DRIVER_HANDED_OFF, DRIVER_IDENTICAL
from .runner import copy_client_for
from .s3client import make_s3_client
from .s3uri import S3Uri

SCHEMA_VERSIONS = ("1.0", "2.0")
SUCCEEDED, TEMPORARY_FAILURE, PERMANENT_FAILURE = "Succeeded", "TemporaryFailure", "PermanentFailure"
#: Result strings land in the completion report; S3 documents no limit, so they are kept to one report cell.
MAX_RESULT_STRING = 1024
#: Longest value of a job's ``UserArguments`` entry (there may be at most 10 entries).
MAX_USER_ARGUMENT = 1024
#: Folder under the transfer's report prefix that holds one JSON record per task handed to AWS Batch.
HANDOFF_RECORDS = "batch-jobs/"

#: Setting name in ``userArguments`` -> environment variable that supplies it when the job does not.
SETTINGS = {
    "destination": "MXTRANSFER_DESTINATION",
    "sourcePrefix": "MXTRANSFER_SOURCE_PREFIX",
    "options": "MXTRANSFER_OPTIONS",
    "inlineMaxBytes": "MXTRANSFER_INLINE_MAX_BYTES",
    "report": "MXTRANSFER_REPORT",
    "jobQueue": "MXTRANSFER_JOB_QUEUE",
    "jobDefinition": "MXTRANSFER_JOB_DEFINITION",
    "transferId": "MXTRANSFER_TRANSFER_ID",
}
#: CopyOptions fields that the ``options`` setting may not set (they have settings of their own).
_OWN_SETTINGS = ("destination_bucket", "destination_prefix", "source_prefix")
#: The default of the one CopyOptions field the worker command line does not take.
_WORKER_RETRY_BASE_DELAY = next(field.default for field in fields(CopyOptions) if field.name == "retry_base_delay")
_BATCH_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

log = logging.getLogger("mxtransfer_worker.lambda_driver")


@dataclass(frozen=True)
class DriverConfig:
    """What the driver does with each task: copy options, inline limit and where to hand large objects."""

    options: CopyOptions
    inline_max_bytes: int
    report: S3Uri | None = None
    job_queue: str = ""
    job_definition: str = ""
    transfer_id: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> "DriverConfig":
        """Build the configuration from ``SETTINGS`` names; ValueError naming the bad setting."""
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        if not settings.get("destination"):
            raise ValueError(f"no destination: pass userArguments.destination or set {SETTINGS['destination']}")
        destination = S3Uri.parse(settings["destination"])
        extra = _options_json(settings.get("options") or "{}")
        options = CopyOptions(destination_bucket=destination.bucket, destination_prefix=destination.key,
                              source_prefix=settings.get("sourcePrefix") or "", **extra)
        inline_max_bytes = options.multipart_threshold
        if settings.get("inlineMaxBytes"):
            try:
                inline_max_bytes = int(settings["inlineMaxBytes"])
            except ValueError:
                raise ValueError(f"inlineMaxBytes must be a whole number of bytes, not {settings['inlineMaxBytes']!r}") from None
        report = S3Uri.parse(settings["report"]) if settings.get("report") else None
        return cls(options, inline_max_bytes, report, settings.get("jobQueue") or "",
                   settings.get("jobDefinition") or "", settings.get("transferId") or "")

    @property
    def can_hand_off(self) -> bool:
        """Whether large objects can be handed to AWS Batch (report prefix, queue and job definition known)."""
        return bool(self.report and self.job_queue and self.job_definition)


def _options_json(text: str) -> dict:
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"options is not valid JSON: {error}") from None
    if not isinstance(extra, dict):
        raise ValueError("options must be a JSON object of copy option names and values")
    allowed = {field.name for field in fields(CopyOptions)} - set(_OWN_SETTINGS)
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ValueError(f"unknown copy option(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    for field in fields(CopyOptions):
        if field.name in extra and not _json_type_fits(extra[field.name], field.default):
            kind = "a string" if field.default is None else f"a JSON {type(field.default).__name__}"
            raise ValueError(f"copy option {field.name} must be {kind}, not {extra[field.name]!r}")
    return extra


def _json_type_fits(value, default) -> bool:
    """Whether a JSON ``value`` has the type of a CopyOptions field with this ``default`` (None: optional str)."""
    if default is None:
        return value is None or isinstance(value, str)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def settings_for(event: dict, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of this invocation: the environment's, overridden by the job's ``userArguments`` (2.0)."""
    settings = {name: environ[variable] for name, variable in SETTINGS.items() if environ.get(variable)}
    settings.update((event.get("job") or {}).get("userArguments") or {})
    return settings


def task_row(task: dict, schema_version: str) -> ManifestRow:
    """The object a task names: bucket from ``s3BucketArn`` (1.0) or ``s3Bucket`` (2.0), the decoded key and
    the version id (null or absent when the manifest has none)."""
    if schema_version == "1.0":
        arn = task["s3BucketArn"]
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
            raise ValueError(f"s3BucketArn {arn!r} is not a bucket ARN")
        bucket = parts[5]
    else:
        bucket = task["s3Bucket"]
    return ManifestRow(bucket, decode_key(task["s3Key"]), task.get("s3VersionId") or None)


def user_arguments(options: CopyOptions, *, report_uri: str = "", transfer_id: str = "", job_queue: str = "",
                   job_definition: str = "", inline_max_bytes: int | None = None) -> dict[str, str]:
    """The ``UserArguments`` of a schema 2.0 job whose driver copies with ``options`` (``settings_for`` and
    ``DriverConfig.from_settings`` read them back). The copy settings are always passed, so the Lambda's
    environment cannot change what a job copies; the hand-off settings only when given, so the environment may
    supply the stack's queue and job definition. ValueError when a value exceeds S3's 1,024 characters."""
    defaults = CopyOptions(destination_bucket=options.destination_bucket)
    extra = {field.name: getattr(options, field.name) for field in fields(CopyOptions)
             if field.name not in _OWN_SETTINGS and getattr(options, field.name) != getattr(defaults, field.name)}
    arguments = {"destination": str(S3Uri(options.destination_bucket, options.destination_prefix)),
                 "sourcePrefix": options.source_prefix,
                 "options": json.dumps(extra, separators=(",", ":")) if extra else "",
                 "report": report_uri, "transferId": transfer_id}
    optional = {"jobQueue": job_queue, "jobDefinition": job_definition,
                "inlineMaxBytes": "" if inline_max_bytes is None else str(inline_max_bytes)}
    arguments.update((name, value) for name, value in optional.items() if value)
    too_long = [name for name, value in arguments.items() if len(value) > MAX_USER_ARGUMENT]
    if too_long:
        raise ValueError(f"user argument(s) {', '.join(too_long)} longer than S3 Batch Operations' "
                         f"{MAX_USER_ARGUMENT} characters")
    return arguments


def handoff_name(s3_batch_job_id: str, task_id: str) -> str:
    """The stable name of one task's hand-off: the same task of the same job always gets the same name."""
    return hashlib.sha256(f"{s3_batch_job_id}\n{task_id}".encode()).hexdigest()[:32]


def _answer(task_id: str, code: str, text: str) -> dict:
    if len(text) > MAX_RESULT_STRING:
        text = text[:MAX_RESULT_STRING - 1] + "…"
    return {"taskId": task_id, "resultCode": code, "resultString": text}


def _failure(task_id: str, code: str, message: str, temporary: bool) -> dict:
    return _answer(task_id, TEMPORARY_FAILURE if temporary else PERMANENT_FAILURE, f"{code}: {message}")


class _Tasks:
    """Answers the tasks of one invocation."""

    def __init__(self, s3, batch, config: DriverConfig, copier: ObjectCopier, s3_batch_job_id: str):
        self.s3 = s3
        self.batch = batch
        self.config = config
        self.copier = copier
        self.s3_batch_job_id = s3_batch_job_id

    def answer(self, task: dict, schema_version: str) -> dict:
        task_id = task.get("taskId", "")
        try:
            row = task_row(task, schema_version)
        except (KeyError, ValueError) as error:
            missing = f"the task has no {error}" if isinstance(error, KeyError) else str(error)
            return _failure(task_id, "InvalidTask", missing, temporary=False)
        source = f"s3://{row.bucket}/{row.key}"
        try:
            # The engine's HEAD of the source, with its explanation of bare 404/403 answers.
            head = self.copier.head_source(row)
        except Exception as raw:  # noqa: BLE001 - classify() re-raises what is not an S3 error
            error = classify(raw, f"read {source}")
            return _failure(task_id, error.code, error.message, error.temporary)
        if head["ContentLength"] > self.config.inline_max_bytes:
            return self._hand_off(task_id, replace(row, size=head["ContentLength"]))
        return self._copied(task_id, self.copier.copy(row, head=head))

    def _copied(self, task_id: str, result: CopyResult) -> dict:
        destination = f"s3://{self.config.options.destination_bucket}/{result.destination_key}"
        if result.status == FAILED:
            return _failure(task_id, result.error_code, result.message, result.temporary)
        if result.status == SKIPPED:
            return _answer(task_id, SUCCEEDED, f"{DRIVER_IDENTICAL}{destination}: {result.message}")
        return _answer(task_id, SUCCEEDED, f"{DRIVER_COPIED}{destination}: {result.message}")

    def _hand_off(self, task_id: str, row: ManifestRow) -> dict:
        config = self.config
        too_large = f"{row.size:,} bytes, over the driver's inline limit of {config.inline_max_bytes:,} bytes"
        if not config.can_hand_off:
            return _failure(task_id, "HandOffNotConfigured", f"s3://{row.bucket}/{row.key} is {too_large}; set "
                            "report, jobQueue and jobDefinition to hand such objects to AWS Batch", temporary=False)
        name = handoff_name(self.s3_batch_job_id, task_id)
        record = config.report.join(f"{HANDOFF_RECORDS}{name}.json")
        try:
            job_id = self._recorded_job(record) or self._submit(task_id, row, name, record)
        except Exception as raw:  # noqa: BLE001 - classify() re-raises what is not an AWS error
            error = classify(raw, f"hand s3://{row.bucket}/{row.key} to AWS Batch")
            return _failure(task_id, error.code, error.message, error.temporary)
        return _answer(task_id, SUCCEEDED, f"{DRIVER_HANDED_OFF}{job_id} ({too_large}); the transfer "
                       f"waits for it (record {record})")

    def _recorded_job(self, record: S3Uri) -> str | None:
        """The AWS Batch job id an earlier attempt of this task recorded, if any."""
        try:
            body = self.s3.get_object(Bucket=record.bucket, Key=record.key)["Body"].read()
        except ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return handoff_record(body, record)["batchJobId"]

    def _submit(self, task_id: str, row: ManifestRow, name: str, record: S3Uri) -> str:
        config = self.config
        work = config.report.join(f"{HANDOFF_RECORDS}{name}/")
        manifest = work.join("manifest.csv")
        # The worker has no flag for retry_base_delay and keeps its default; the rest travels as flags.
        options = replace(config.options, retry_base_delay=_WORKER_RETRY_BASE_DELAY)
        upload_manifest(self.s3, [row], str(manifest))
        prefix = _BATCH_NAME_UNSAFE.sub("-", f"mxtransfer-{config.transfer_id}" if config.transfer_id else "mxtransfer")
        job_name = f"{prefix[:95]}-{name}"  # AWS Batch job names: up to 128 letters, digits, - and _
        tags = {"mxtransfer:s3-batch-job": self.s3_batch_job_id}
        if config.transfer_id:
            tags["mxtransfer:transfer-id"] = config.transfer_id
        submitted = self.batch.submit_job(
            jobName=job_name, jobQueue=config.job_queue, jobDefinition=config.job_definition,
            containerOverrides={"command": ["mxtransfer-worker", *copy_arguments(str(manifest), str(work), 1, options)]},
            tags=tags)
        details = {
            "batchJobId": submitted["jobId"], "batchJobName": job_name, "jobQueue": config.job_queue,
            "transferId": config.transfer_id, "s3BatchJobId": self.s3_batch_job_id, "taskId": task_id,
            "source": {"bucket": row.bucket, "key": row.key, "versionId": row.version_id, "size": row.size},
            "manifest": str(manifest), "report": str(work),
            "submittedAt": datetime.now(timezone.utc).isoformat(),
        }
        self.s3.put_object(Bucket=record.bucket, Key=record.key, ContentType="application/json",
                           Body=json.dumps(details, indent=2).encode())
        return submitted["jobId"]


def handoff_record(body: bytes, location: S3Uri) -> dict:
    """The hand-off record (``HANDOFF_RECORDS``) in ``body``, read from ``location``; raises ``ValueError`` naming
    it when it is not one (not JSON, or without the AWS Batch job's id and report prefix)."""
    not_one = f"{location} is not a hand-off record of the driver"
    record = json_object(body, not_one)
    if not all(isinstance(record.get(name), str) for name in ("batchJobId", "report")):
        raise ValueError(f"{not_one} (it lacks batchJobId or report)")
    return record


def handle_event(event: dict, s3, batch, environ: Mapping[str, str]) -> dict:
    """Answer one S3 Batch Operations invocation with ``s3`` and ``batch`` clients and ``environ`` settings."""
    version = event.get("invocationSchemaVersion")
    tasks = event.get("tasks") or []
    response = {"invocationSchemaVersion": version, "treatMissingKeysAs": PERMANENT_FAILURE,
                "invocationId": event.get("invocationId")}
    try:
        if version not in SCHEMA_VERSIONS:
            raise ValueError(f"invocationSchemaVersion {version!r} is not one of {', '.join(SCHEMA_VERSIONS)}")
        config = DriverConfig.from_settings(settings_for(event, environ))
    except ValueError as error:
        log.error("driver configuration error: %s", error)
        response["results"] = [_failure(task.get("taskId", ""), "DriverConfigurationError", str(error), False)
                               for task in tasks]
        return response
    with ThreadPoolExecutor(config.options.part_concurrency, thread_name_prefix="mxtransfer-part") as parts:
        copier = ObjectCopier(s3, config.options, parts, copy_client=_copy_client(s3, config.options))
        answering = _Tasks(s3, batch, config, copier, event["job"]["id"])
        response["results"] = [answering.answer(task, version) for task in tasks]
    for result in response["results"]:
        log.info("task %s: %s: %s", result["taskId"], result["resultCode"], result["resultString"])
    return response


#: The native copy client of the last invocation's S3 client and options, kept for the next: an execution
#: environment answers invocation after invocation, and building awscrt's client costs more CPU than a copy.
_copy_client = functools.lru_cache(maxsize=1)(copy_client_for)


@functools.lru_cache(maxsize=1)
def _clients():
    """The S3 and Batch clients, created once per Lambda execution environment."""
    return make_s3_client(), boto3.client("batch")


def handler(event: dict, context) -> dict:
    """Lambda entry point for S3 Batch Operations ``LambdaInvoke`` jobs (schema 1.0 and 2.0)."""
    s3, batch = _clients()
    return handle_event(event, s3, batch, os.environ)
