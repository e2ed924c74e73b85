"""Copy the objects of a manifest to a destination prefix, server-side, in shards on a compute backend."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.exceptions import AirflowSkipException
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_mxtransfer.assets import TRANSFER_ASSET_ALIAS, with_asset_alias
from airflow_provider_mxtransfer.backends import get_backend
from airflow_provider_mxtransfer.compat import conf
from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from airflow_provider_mxtransfer.links.transfer import TRANSFER_LINKS
from airflow_provider_mxtransfer.monitor import TransferMonitor
from airflow_provider_mxtransfer.sensors.fleet import complete_transfer, finish_transfer
from airflow_provider_mxtransfer.triggers.fleet import BatchFleetTrigger
from airflow_provider_mxtransfer.transfer import (
    TransferPlan,
    report_uri_for,
    shards_for,
    tag_value,
    transfer_id_for,
    transfer_xcom,
)
from mxtransfer_worker.manifest import open_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import GiB
from mxtransfer_worker.report import failed_rows_manifest
from mxtransfer_worker.s3uri import S3Uri
from mxtransfer_worker.sharding import plan_shards, planning

#: With ``retry_failed``, the manifest of the rows to copy again is written under the report prefix by this name.
RETRY_MANIFEST = "retry-failed-manifest.csv"
#: Reports go to ``s3://<manifest bucket>/REPORT_FOLDER/<transfer id>/`` unless ``report_root`` is given.
REPORT_FOLDER = "mxtransfer-reports"


class S3BatchCopyOperator(AwsBaseOperator[S3CopyHook]):
    """Copy every object of an S3 Batch Operations CSV manifest to ``destination``, server-side, in shards.

    The transfer's id is derived from the DAG, run, task and map index, so a retry or clear of this task finds
    the same transfer: with ``compute="batch"`` a job of this transfer still queued or running is reattached
    to instead of submitting a second one. A finished transfer is submitted again; the engine then skips the
    objects already copied.

    Returns (XCom, the input of ``BatchFleetSensor``) a dict::

        {"transfer_id": str, "backend": "batch" | "s3-batch-operations" | "local", "job_ids": [str, ...],
         "shard_count": int, "manifest_uri": "s3://...", "report_uri": "s3://.../<transfer_id>/",
         "destination": "s3://bucket/prefix/", "planned_objects": int, "planned_bytes": int | None,
         ...backend-specific ids (batch: "job_name", "job_queue")}

    (``planned_*`` are what the manifest holds, for the progress percentages.)

    :param manifest_uri: ``s3://bucket/key`` of the manifest (``bucket,key[,versionId]``, keys URL-encoded;
        sizes from its ``.sizes`` sidecar when present) (templated)
    :param destination: ``s3://bucket/prefix/`` to copy to (templated)
    :param copy_options: other fields of the engine's ``CopyOptions`` (e.g. ``source_prefix``,
        ``storage_class``, ``sse``, ``overwrite``, ``part_size``) (templated)
    :param report_root: ``s3://bucket/prefix/`` under which the report goes, in ``<transfer_id>/``; default
        ``s3://<manifest bucket>/mxtransfer-reports/`` (templated)
    :param compute: ``"batch"`` (an AWS Batch array job, one child per shard), ``"s3-batch-operations"`` or
        ``"local"`` (in this process; the operator returns when the copy is done)
    :param job_queue: AWS Batch job queue, for ``compute="batch"`` (templated)
    :param job_definition: AWS Batch job definition of the worker image, for ``compute="batch"`` (templated)
    :param backend_options: further arguments of the backend (e.g. ``environment`` for Batch) (templated)
    :param shard_count: number of shards; None plans it from the manifest: about ``target_bytes_per_shard``
        bytes and ``target_rows_per_shard`` objects per shard, at most ``max_shards`` (templated)
    :param wait_for_completion: wait until the transfer ends and judge it like ``BatchFleetSensor``
    :param deferrable: wait in the triggerer (with ``wait_for_completion``)
    :param poll_interval: seconds between status checks while waiting
    :param terminate_on_kill: terminate the transfer's jobs when this task is killed (marked failed or success,
        or cleared while it waits); off by default, since a cleared task reattaches to its fleet in flight
    :param retry_failed: ``s3://`` of an earlier transfer's report (its ``transfer.csv``, or its report prefix):
        copy only the rows that failed there, instead of the rows of ``manifest_uri``. Their manifest is written
        to this transfer's report prefix; when no row failed the task is skipped (templated)
    :param asset_alias: with ``wait_for_completion``, name of the asset alias (dataset alias on Airflow 2)
        declared as outlet, to which a successful transfer adds its destination prefix's asset with the transfer
        summary as extra (as ``BatchFleetSensor`` does); None: no asset event
    """

    aws_hook_class = S3CopyHook
    template_fields: Sequence[str] = aws_template_fields(
        "manifest_uri", "destination", "copy_options", "report_root", "job_queue", "job_definition",
        "backend_options", "shard_count", "retry_failed",
    )
    template_fields_renderers = {"copy_options": "json", "backend_options": "json"}
    operator_extra_links = TRANSFER_LINKS
    ui_color = "#c3dae0"

    def __init__(self, *, manifest_uri: str, destination: str, copy_options: dict | None = None,
                 report_root: str | None = None, compute: str = "batch", job_queue: str | None = None,
                 job_definition: str | None = None, backend_options: dict | None = None,
                 shard_count: int | None = None, target_bytes_per_shard: int = 500 * GiB,
                 target_rows_per_shard: int = 200_000, max_shards: int = 1000, wait_for_completion: bool = False,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float = 30, terminate_on_kill: bool = False, retry_failed: str | None = None,
                 asset_alias: str | None = TRANSFER_ASSET_ALIAS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.manifest_uri = manifest_uri
        self.destination = destination
        self.copy_options = copy_options
        self.report_root = report_root
        self.compute = compute
        self.job_queue = job_queue
        self.job_definition = job_definition
        self.backend_options = backend_options
        self.shard_count = shard_count
        self.target_bytes_per_shard = target_bytes_per_shard
        self.target_rows_per_shard = target_rows_per_shard
        self.max_shards = max_shards
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.terminate_on_kill = terminate_on_kill
        self.retry_failed = retry_failed
        self.asset_alias = asset_alias
        if wait_for_completion:
            self.outlets = with_asset_alias(self.outlets, asset_alias)
        self.transfer: dict | None = None

    @property
    def _aws(self) -> dict:
        return {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name, "verify": self.verify,
                "botocore_config": self.botocore_config}

    def _backend(self):
        options = dict(self.backend_options or {})
        if self.compute == "batch":
            options.update(job_queue=self.job_queue, job_definition=self.job_definition)
        return get_backend(self.compute, **self._aws, **options)

    def _monitor(self, transfer: dict) -> TransferMonitor:
        return TransferMonitor(transfer, **self._aws, log=self.log)

    def execute(self, context) -> dict:
        ti = context["ti"]
        transfer_id = transfer_id_for(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        destination = S3Uri.parse(self.destination)
        options = CopyOptions(destination_bucket=destination.bucket, destination_prefix=destination.key,
                              **(self.copy_options or {}))
        report_root = self.report_root or str(S3Uri(S3Uri.parse(self.manifest_uri).bucket, REPORT_FOLDER + "/"))
        report_uri = report_uri_for(report_root, transfer_id)
        manifest_uri = str(S3Uri.parse(report_uri).join(RETRY_MANIFEST)) if self.retry_failed else self.manifest_uri
        backend = self._backend()
        handle = backend.find_existing(transfer_id)
        if handle:
            self.log.info("transfer %s: reattaching to its %s jobs still in flight: %s", transfer_id,
                          self.compute, ", ".join(handle["job_ids"]))
            handle = {**handle, **self._plan_shards(options, manifest_uri)[1]}
        else:
            if self.retry_failed:
                self._write_retry_manifest(manifest_uri)
            shard_count, planned = self._plan_shards(options, manifest_uri)
            plan = TransferPlan(transfer_id, manifest_uri, options, shard_count, report_uri,
                                tags={"mxtransfer:transfer-id": transfer_id, "airflow:dag-id": tag_value(ti.dag_id),
                                      "airflow:run-id": tag_value(ti.run_id), "airflow:task-id": tag_value(ti.task_id)})
            self.log.info("transfer %s: %s -> %s in %d shards on %s; report %s", transfer_id, manifest_uri,
                          plan.destination_uri, plan.shard_count, self.compute, report_uri)
            handle = {**backend.submit(plan), **planned}
            self.log.info("transfer %s submitted: jobs %s", transfer_id, ", ".join(handle["job_ids"]) or "(none)")
        self.transfer = transfer_xcom(transfer_id, manifest_uri, report_uri, str(destination), handle)
        monitor = self._monitor(self.transfer)
        monitor.persist_links(context, self)
        if self.wait_for_completion:
            self._wait(context, monitor)
        return self.transfer

    def _write_retry_manifest(self, manifest_uri: str) -> None:
        """Write the manifest of the rows that failed in ``retry_failed``; skip the task when none did."""
        stats = failed_rows_manifest(self.hook.get_copy_client(), self.retry_failed, manifest_uri)
        self.log.info("retry_failed: %d rows failed in %s; their manifest: %s", stats.rows, self.retry_failed,
                      manifest_uri)
        if not stats.rows:
            raise AirflowSkipException(f"no row failed in {self.retry_failed}: nothing to copy again")

    def _plan_shards(self, options: CopyOptions, manifest_uri: str) -> tuple[int, dict]:
        """The shard count (given, or planned from the manifest's size), after logging the shards' balance, and
        what the manifest holds: ``planned_objects`` and ``planned_bytes`` (None when some rows have no size),
        for the progress percentages."""
        client = self.hook.get_copy_client()

        def rows():
            return open_manifest(client, manifest_uri)

        count = total = unknown = 0
        for row in rows():
            count += 1
            total += row.size or 0
            unknown += row.size is None
        shard_count = self.shard_count
        if shard_count is None:
            shard_count = shards_for(total, count, self.target_bytes_per_shard, self.target_rows_per_shard,
                                     self.max_shards)
        plan = plan_shards(rows, int(shard_count), **planning(options))
        self.log.info("shard plan: %d shards, %d objects (%d of unknown size), %.2f GiB; objects per shard "
                      "%d-%d, GiB per shard %.2f-%.2f; %d large objects, on %d shards of their own",
                      plan.shard_count, sum(plan.rows), plan.unknown_sizes, sum(plan.bytes) / GiB, min(plan.rows),
                      max(plan.rows), min(plan.bytes) / GiB, max(plan.bytes) / GiB, plan.large_objects,
                      plan.dedicated_shards)
        return plan.shard_count, {"planned_objects": count, "planned_bytes": None if unknown else total}

    def _wait(self, context, monitor: TransferMonitor) -> None:
        status = monitor.check()
        if not status.finished and self.deferrable:
            self.defer(trigger=BatchFleetTrigger.for_task(self, self.transfer), method_name="execute_complete",
                       timeout=self.execution_timeout or timedelta(days=7))
        while not status.finished:
            time.sleep(self.poll_interval)
            status = monitor.check()
        finish_transfer(self, context, monitor, status)

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> dict:
        """Resume after the trigger fired: judge the finished transfer and return it."""
        complete_transfer(self, context, event)
        return event["transfer"]

    def on_kill(self) -> None:
        if self.transfer and self.terminate_on_kill:
            self._backend().terminate(self.transfer, "Airflow task killed")
