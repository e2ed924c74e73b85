"""Wait until every shard of a transfer has finished, then merge its report and fail or succeed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_provider_mxtransfer.assets import TRANSFER_ASSET_ALIAS, emit_destination_event, with_asset_alias
from airflow_provider_mxtransfer.backends import FleetStatus
from airflow_provider_mxtransfer.compat import AirflowException, conf
from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from airflow_provider_mxtransfer.links.transfer import TRANSFER_LINKS
from airflow_provider_mxtransfer.monitor import TransferMonitor, check_transfer
from airflow_provider_mxtransfer.triggers.fleet import BatchFleetTrigger


class BatchFleetSensor(AwsBaseSensor[S3CopyHook]):
    """Waits for the jobs of a transfer started by ``S3BatchCopyOperator`` (an AWS Batch array job and its
    children, an S3 Batch Operations job and the jobs it spawned, or a finished local run), logging progress.

    At the end it merges the shard reports into ``transfer.csv``, ``transfer.json`` and ``transfer.html`` under
    the transfer's report prefix, and fails naming the failed shards, their first errors and log links, or
    returns the totals and emits an asset event for the destination prefix (see ``airflow_provider_mxtransfer.assets``).

    :param transfer: the operator's return value (templated; pass ``copy_task.output``)
    :param deferrable: wait in the triggerer instead of a worker slot
    :param poll_interval: seconds between status checks in deferrable mode (``poke_interval`` otherwise)
    :param terminate_on_kill: terminate the jobs when this task is killed (marked failed or success; also a
        Clear, after which the copy task would otherwise reattach to the fleet still running)
    :param asset_alias: name of the asset alias (dataset alias on Airflow 2) declared as outlet, to which a
        successful transfer adds its destination prefix's asset with the transfer summary as extra; None: no
        asset event
    """

    aws_hook_class = S3CopyHook
    template_fields: Sequence[str] = aws_template_fields("transfer")
    operator_extra_links = TRANSFER_LINKS
    ui_color = "#c3dae0"

    def __init__(self, *, transfer: dict | Any, deferrable: bool = conf.getboolean(
                     "operators", "default_deferrable", fallback=False),
                 poll_interval: float = 60, terminate_on_kill: bool = False,
                 asset_alias: str | None = TRANSFER_ASSET_ALIAS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.transfer = transfer
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.terminate_on_kill = terminate_on_kill
        self.asset_alias = asset_alias
        self.outlets = with_asset_alias(self.outlets, asset_alias)

    def _monitor(self, transfer: dict) -> TransferMonitor:
        return TransferMonitor(transfer, aws_conn_id=self.aws_conn_id, region_name=self.region_name,
                               verify=self.verify, botocore_config=self.botocore_config, log=self.log)

    def execute(self, context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        monitor = self._monitor(self.transfer)
        status = monitor.check()
        if status.finished:
            return finish_transfer(self, context, monitor, status)
        monitor.persist_links(context, self, status)
        self.defer(trigger=BatchFleetTrigger.for_task(self, self.transfer),
                   method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context) -> PokeReturnValue:
        monitor = self._monitor(self.transfer)
        status = monitor.check()
        if not status.finished:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=finish_transfer(self, context, monitor, status))

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> dict:
        """Resume after the trigger fired: judge the finished transfer."""
        return complete_transfer(self, context, event)

    def on_kill(self) -> None:
        if self.terminate_on_kill:
            transfer = check_transfer(self.transfer)
            self._monitor(transfer).backend.terminate(transfer, "Airflow task killed")


def complete_transfer(task, context, event: dict[str, Any] | None) -> dict:
    """The end of a deferred wait for ``task`` (the sensor, or the operator waiting for completion): check the
    trigger's event, persist the links, merge the report and fail or return the totals."""
    if not event or event.get("status") not in ("success", "error") or "transfer" not in event:
        raise AirflowException(f"unexpected trigger event for {task.task_id}: {event!r}")
    if event["status"] == "error":
        raise AirflowException(event.get("message", "the transfer's trigger failed"))
    return finish_transfer(task, context, task._monitor(event["transfer"]), FleetStatus.from_dict(event["fleet"]))


def finish_transfer(task, context, monitor: TransferMonitor, status: FleetStatus) -> dict:
    """Judge a finished transfer for ``task``: persist the links, merge the report, fail or emit the destination's
    asset event and return the totals."""
    monitor.persist_links(context, task, status)
    totals = monitor.finish(status)
    emit_destination_event(task, context, monitor.transfer, totals)
    return totals
