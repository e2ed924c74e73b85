"""Abort the incomplete multipart uploads a transfer left behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from mxtransfer_worker.cleanup import DEFAULT_MIN_IDLE_SECONDS, abort_stale_uploads


class AbortStaleUploadsOperator(AwsBaseOperator[S3CopyHook]):
    """Aborts the incomplete multipart uploads a transfer started by ``S3BatchCopyOperator`` left behind under its
    destination (a worker lost for good, a copy given up on a temporary error), and only those: an upload is the
    transfer's when a checkpoint under its report prefix names it. Uploads of anyone else under the prefix, and
    those whose checkpoint was written less than ``min_idle_seconds`` ago (a copy that may still run), are left
    alone. Run it after the transfer ended (e.g. after ``BatchFleetSensor``, with ``trigger_rule="all_done"``).

    Returns (XCom) the counts ``{"aborted", "active", "foreign", "orphan_checkpoints",
    "unreadable_checkpoints"}``.

    :param transfer: the copy operator's return value (templated; pass ``copy_task.output``)
    :param min_idle_seconds: leave uploads whose checkpoint was written more recently than this
    :param dry_run: only log what would be aborted
    """

    aws_hook_class = S3CopyHook
    template_fields: Sequence[str] = aws_template_fields("transfer")
    ui_color = "#c3dae0"

    def __init__(self, *, transfer: dict | Any, min_idle_seconds: float = DEFAULT_MIN_IDLE_SECONDS,
                 dry_run: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.transfer = transfer
        self.min_idle_seconds = min_idle_seconds
        self.dry_run = dry_run

    def execute(self, context) -> dict:
        cleanup = abort_stale_uploads(self.hook.get_copy_client(), self.transfer["destination"],
                                      self.transfer["report_uri"], self.min_idle_seconds, self.dry_run)
        for name in cleanup.aborted:
            self.log.info("%s %s", "would abort" if self.dry_run else "aborted", name)
        self.log.info("transfer %s: stale uploads %s", self.transfer["transfer_id"], cleanup.summary())
        return cleanup.summary()
