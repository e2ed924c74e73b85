"""A trigger that waits, without a worker slot, until every shard of a transfer has finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mxtransfer.monitor import TransferMonitor, progress_message


class BatchFleetTrigger(BaseTrigger):
    """Polls a transfer's backend (for AWS Batch through aiobotocore) every ``poll_interval`` seconds and fires
    ``{"status": "success", "transfer": ..., "fleet": FleetStatus.to_dict()}`` once every shard has finished,
    whatever its outcome (the task judges it), or ``{"status": "error", "message": ...}`` if polling failed.

    Cancellation: a trigger is also cancelled when the triggerer restarts or hands it to another triggerer,
    so cancellation alone never stops the jobs. Airflow 3.3 calls ``on_kill`` only when a user kills the
    deferred task (mark failed/success, clear); then, with ``terminate_on_kill``, the jobs are terminated. It is
    off by default: Clear is how users retry, and a cleared copy task reattaches to the fleet still in flight,
    which the old trigger's late ``on_kill`` must not stop.
    Airflow 2.x has no such call: a killed deferred task leaves its jobs running there.
    """

    def __init__(self, *, transfer: dict, aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None, poll_interval: float = 60,
                 terminate_on_kill: bool = False) -> None:
        super().__init__()
        self.transfer = transfer
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.poll_interval = poll_interval
        self.terminate_on_kill = terminate_on_kill

    @classmethod
    def for_task(cls, task, transfer: dict) -> BatchFleetTrigger:
        """The trigger that waits for ``transfer`` with ``task``'s AWS connection settings, poll interval and
        ``terminate_on_kill``."""
        return cls(transfer=transfer, aws_conn_id=task.aws_conn_id, region_name=task.region_name, verify=task.verify,
                   botocore_config=task.botocore_config, poll_interval=task.poll_interval,
                   terminate_on_kill=task.terminate_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "transfer": self.transfer, "aws_conn_id": self.aws_conn_id, "region_name": self.region_name,
            "verify": self.verify, "botocore_config": self.botocore_config, "poll_interval": self.poll_interval,
            "terminate_on_kill": self.terminate_on_kill,
        }

    def _monitor(self) -> TransferMonitor:
        return TransferMonitor(self.transfer, aws_conn_id=self.aws_conn_id, region_name=self.region_name,
                               verify=self.verify, botocore_config=self.botocore_config, log=self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        monitor = self._monitor()
        transfer_id = self.transfer["transfer_id"]
        while True:
            try:
                status = await monitor.backend.astatus(self.transfer)
                totals = await asyncio.to_thread(monitor.totals)
            except Exception as error:  # reported to the task, which fails with it
                yield TriggerEvent({"status": "error", "transfer": self.transfer,
                                    "message": f"cannot read the status of transfer {transfer_id}: {error}"})
                return
            self.log.info("%s", progress_message(self.transfer, status, totals))
            if status.finished:
                yield TriggerEvent({"status": "success", "transfer": self.transfer, "fleet": status.to_dict()})
                return
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """Terminate the transfer's jobs: called by Airflow 3.3+ only when a user kills the deferred task."""
        if not self.terminate_on_kill:
            return
        transfer_id = self.transfer["transfer_id"]
        self.log.info("task killed: terminating the jobs of transfer %s", transfer_id)
        try:
            await asyncio.to_thread(self._monitor().backend.terminate, self.transfer, "Airflow task killed")
        except Exception:
            self.log.exception("could not terminate the jobs of transfer %s: they may still run", transfer_id)
