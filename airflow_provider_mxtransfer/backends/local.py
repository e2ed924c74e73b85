"""The ``local`` backend: runs every shard in the Airflow worker's process (threads), for small transfers,
the demo and tests. ``submit`` returns when the copy is done, so there is nothing to reattach to or stop."""

from __future__ import annotations

import logging

from airflow_provider_mxtransfer.backends import FAILED, SUCCEEDED, FleetStatus
from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook
from airflow_provider_mxtransfer.transfer import TransferPlan
from mxtransfer_worker.report import ShardReports
from mxtransfer_worker.runner import client_connections
from mxtransfer_worker.shard import run_shard

log = logging.getLogger(__name__)


class LocalBackend:
    """Copies the shards one after another, each with the engine's object and part thread pools."""

    name = "local"

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None) -> None:
        self.hook = S3CopyHook(aws_conn_id=aws_conn_id, region_name=region_name, verify=verify,
                               config=botocore_config)

    def find_existing(self, transfer_id: str) -> dict | None:
        return None

    def submit(self, plan: TransferPlan) -> dict:
        options = plan.options
        client = self.hook.get_copy_client(client_connections(options))
        failed_shards = []
        for index in range(plan.shard_count):
            summary = run_shard(client, plan.manifest_uri, options, plan.report_uri, index, plan.shard_count)
            log.info("shard %d/%d: %d rows, %d succeeded, %d skipped, %d failed", index, plan.shard_count,
                     summary["rows"], summary["succeeded"], summary["skipped"], summary["failed"])
            if summary["failed"]:
                failed_shards.append(index)
        return {"backend": self.name, "job_ids": [], "shard_count": plan.shard_count, "failed_shards": failed_shards}

    def status(self, transfer: dict) -> FleetStatus:
        failed_shards = transfer["failed_shards"]
        count = transfer["shard_count"]
        return FleetStatus(FAILED if failed_shards else SUCCEEDED, count, succeeded=count - len(failed_shards),
                           failed=len(failed_shards), failed_shards=failed_shards)

    async def astatus(self, transfer: dict) -> FleetStatus:
        return self.status(transfer)

    def report_sources(self, transfer: dict) -> list:
        return [ShardReports(transfer["report_uri"], transfer["shard_count"])]

    def terminate(self, transfer: dict, reason: str) -> None:
        """Nothing runs outside the task that ran ``submit``."""
