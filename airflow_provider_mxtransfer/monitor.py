"""Watching a transfer to its end, shared by ``BatchFleetSensor``, ``S3BatchCopyOperator(wait_for_completion=True)``
and ``BatchFleetTrigger``: progress lines, the merged report, and the failure message."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from airflow_provider_mxtransfer.backends import FAILED, FleetStatus, get_backend
from airflow_provider_mxtransfer.compat import AirflowException
from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from airflow_provider_mxtransfer.links.transfer import (
    S3BatchOperationsJobLink,
    TransferBatchJobLink,
    TransferDestinationLink,
    TransferLogsLink,
    TransferReportLink,
)
from airflow_provider_mxtransfer.links.transfer import BATCH_LOG_GROUP
from mxtransfer_worker.html_report import human_bytes
from mxtransfer_worker.report import TRANSFER_HTML, MergedReport, merge_reports, report_totals
from mxtransfer_worker.s3uri import S3Uri

#: Failed shards whose first errors go into the failure message.
REPORTED_SHARDS = 5
_REQUIRED = ("transfer_id", "backend", "job_ids", "shard_count", "report_uri", "destination")


def check_transfer(transfer) -> dict:
    """``transfer`` if it is the dict ``S3BatchCopyOperator`` returns; a clear error otherwise."""
    if not isinstance(transfer, dict):
        raise AirflowException(
            f"transfer must be the dict S3BatchCopyOperator returns (pass its .output), got {type(transfer).__name__}"
        )
    missing = [name for name in _REQUIRED if name not in transfer]
    if missing:
        raise AirflowException(f"transfer {transfer.get('transfer_id', '?')} lacks {', '.join(missing)}")
    return transfer


def _done(done: int, planned: int | None, show=str) -> str:
    """``done`` and, when known, ``of <planned> (<percent>%)``, each shown by ``show``."""
    return f"{show(done)} of {show(planned)} ({100 * done / planned:.1f}%)" if planned else show(done)


def _duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``4m05s`` or ``12s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_message(transfer: dict, status: FleetStatus, totals: dict, now: float | None = None) -> str:
    """One progress line: shards by state, then from the shard summaries written so far (running shards write
    theirs every ``shard.PROGRESS_SECONDS``) objects and bytes done, as percentages of what the manifest holds
    (``planned_objects``/``planned_bytes`` of the transfer, when known), throughput since the transfer started
    (to ``now``, epoch seconds, while it runs) and the ETA at that pace."""
    line = (f"transfer {transfer['transfer_id']}: {status.state}; shards of {status.shard_count}: "
            f"{status.succeeded} done, {status.failed} failed, {status.running} running, {status.queued} queued")
    if not totals["rows"]:
        return line
    objects, planned_objects = totals["rows"], transfer.get("planned_objects")
    done_bytes, planned_bytes = totals["bytes_copied"] + totals["bytes_skipped"], transfer.get("planned_bytes")
    line += (f"; objects {_done(objects, planned_objects)} done: {totals['succeeded']} copied, "
             f"{totals['skipped']} already there, {totals['failed']} failed; "
             f"{_done(done_bytes, planned_bytes, human_bytes)} done, {human_bytes(totals['bytes_copied'])} copied")
    elapsed = totals["seconds"]
    if not status.finished and totals.get("started_at"):
        elapsed = (time.time() if now is None else now) - datetime.fromisoformat(totals["started_at"]).timestamp()
    if elapsed <= 0:
        return line
    line += f" at {totals['bytes_copied'] / 2**20 / elapsed:.1f} MiB/s, {objects / elapsed:.1f} objects/s"
    # the ETA follows bytes when the manifest knows every size and holds some, else objects
    done, planned = (done_bytes, planned_bytes) if planned_bytes else (objects, planned_objects)
    if not status.finished and planned and done:
        line += f"; ETA {_duration(elapsed * max(planned - done, 0) / done)}"
    return line


class TransferMonitor:
    """Reads a transfer's status from its backend and its reports from S3, with one AWS connection."""

    def __init__(self, transfer: dict, *, aws_conn_id: str | None, region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None,
                 log: logging.Logger | None = None) -> None:
        self.transfer = check_transfer(transfer)
        aws = {"aws_conn_id": aws_conn_id, "region_name": region_name, "verify": verify,
               "botocore_config": botocore_config}
        self.backend = get_backend(transfer["backend"], **aws)
        self.s3_hook = S3CopyHook(aws_conn_id=aws_conn_id, region_name=region_name, verify=verify,
                                  config=botocore_config)
        self.log = log or logging.getLogger(__name__)
        self._s3 = None

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self.s3_hook.get_copy_client()
        return self._s3

    def totals(self) -> dict:
        """Totals of the shard summaries written so far."""
        return report_totals(self.s3, self.backend.report_sources(self.transfer))

    def check(self) -> FleetStatus:
        """The backend's status, after logging a progress line."""
        status = self.backend.status(self.transfer)
        self.log.info("%s", progress_message(self.transfer, status, self.totals()))
        return status

    def finish(self, status: FleetStatus) -> dict:
        """Merge the backend's row reports into one transfer report; raise naming the failed shards, their first
        errors and log links if the transfer failed; else return the totals."""
        transfer = self.transfer
        merged = merge_reports(self.s3, transfer["report_uri"], self.backend.report_sources(transfer))
        totals = merged.totals
        self.log.info("transfer %s report: %s (totals %s): %d objects, %d copied, %d skipped, %d failed",
                      transfer["transfer_id"], totals["report_csv"], totals["report_json"], totals["rows"],
                      totals["succeeded"], totals["skipped"], totals["failed"])
        if status.state != FAILED and not totals["failed"]:
            return totals
        raise AirflowException(self.failure_message(status, merged))

    def failure_message(self, status: FleetStatus, merged: MergedReport) -> str:
        transfer, totals = self.transfer, merged.totals
        failed = sorted(set(status.failed_shards) | set(merged.first_errors))
        lines = [f"transfer {transfer['transfer_id']} failed: {len(failed) or status.failed} of "
                 f"{totals['shard_count']} shards failed ({', '.join(map(str, failed[:20]))}"
                 f"{', ...' if len(failed) > 20 else ''}); {totals['failed']} objects failed; "
                 f"report {totals['report_csv']}"]
        if status.reason:
            lines.append(f"{transfer['backend']} says: {status.reason}")
        for index in failed[:REPORTED_SHARDS]:
            errors = merged.first_errors.get(index, [])
            described = "; ".join(f"s3://{row['bucket']}/{row['key']}: {row['message'] or row['error_code']}"
                                  for row in errors)
            if index in totals["missing_shards"]:
                described = "no report (the shard's worker stopped before writing one: see its log)"
            elif not errors:
                described = "no failed rows in its report"
            log_link = status.log_urls.get(index)
            lines.append(f"shard {index}: {described}" + (f" (log: {log_link})" if log_link else ""))
        if totals["missing_shards"]:
            lines.append(f"shards without a report: {', '.join(map(str, totals['missing_shards'][:20]))}")
        return "\n".join(lines)

    def persist_links(self, context, operator, status: FleetStatus | None = None) -> None:
        """Store the console links of the transfer's jobs, logs, destination and HTML report for the Airflow UI."""
        transfer = self.transfer
        where = {"context": context, "operator": operator, "region_name": self.s3_hook.conn_region_name,
                 "aws_partition": self.s3_hook.conn_partition}
        destination = S3Uri.parse(transfer["destination"])
        TransferDestinationLink.persist(**where, bucket=destination.bucket, prefix=destination.key)
        report = S3Uri.parse(transfer["report_uri"]).join(TRANSFER_HTML)
        TransferReportLink.persist(**where, bucket=report.bucket, object_key=report.key)
        if transfer["backend"] == "batch":
            TransferBatchJobLink.persist(**where, job_id=transfer["job_ids"][0])
            TransferLogsLink.persist(**where, log_group=BATCH_LOG_GROUP)
        if transfer.get("s3_batch_operations_job_id"):
            S3BatchOperationsJobLink.persist(**where, job_id=transfer["s3_batch_operations_job_id"])
        if status and status.log_urls:
            first = min(status.log_urls)
            TransferLogsLink.persist(**where, log_url=status.log_urls[first])
