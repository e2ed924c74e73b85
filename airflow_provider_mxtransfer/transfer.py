"""The plan of one transfer, shared by the operator, the backends and the sensor.

A transfer copies the objects of one manifest to one destination in ``shard_count`` shards and writes its
report under ``<report_root>/<transfer_id>/``. Its id is a pure function of the task instance (DAG, run, task,
map index), so a retry or a clear of the task computes the same id, the same AWS Batch job name and the
same report prefix.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

from mxtransfer_worker.cli import copy_arguments
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3uri import S3Uri

#: Characters of the readable part of a transfer id (AWS Batch job names allow letters, digits, ``-``, ``_``).
_READABLE = re.compile(r"[^A-Za-z0-9_-]+")


def transfer_id_for(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """A deterministic id for the transfer of one task instance: readable DAG and task ids plus a hash of all
    four, at most 80 characters of ``[A-Za-z0-9_-]``."""
    digest = hashlib.sha256("\0".join((dag_id, run_id, task_id, str(map_index))).encode()).hexdigest()[:16]
    readable = _READABLE.sub("-", f"{dag_id}-{task_id}").strip("-")[:60]
    return f"{readable}-{digest}"


def shards_for(total_bytes: int, rows: int, target_bytes_per_shard: int, target_rows_per_shard: int,
               max_shards: int) -> int:
    """How many shards a manifest of ``rows`` objects and ``total_bytes`` known bytes needs: enough that each
    shard has about ``target_bytes_per_shard`` bytes and ``target_rows_per_shard`` rows, between 1 and
    ``max_shards``."""
    wanted = max(math.ceil(total_bytes / target_bytes_per_shard), math.ceil(rows / target_rows_per_shard), 1)
    return min(wanted, max_shards)


@dataclass(frozen=True)
class TransferPlan:
    """One transfer: what to copy (``manifest_uri``), where (``options``), in how many shards, and where the
    report goes. ``tags`` label the AWS resources a backend creates (DAG, run and task ids)."""

    transfer_id: str
    manifest_uri: str
    options: CopyOptions
    shard_count: int
    report_uri: str
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shard_count < 1:
            raise ValueError(f"transfer {self.transfer_id}: shard_count must be at least 1, got {self.shard_count}")
        S3Uri.parse(self.manifest_uri)
        S3Uri.parse(self.report_uri)

    @property
    def destination_uri(self) -> str:
        return str(S3Uri(self.options.destination_bucket, self.options.destination_prefix))

    def worker_command(self) -> list[str]:
        """The worker's command line for every shard (the shard index comes from ``AWS_BATCH_JOB_ARRAY_INDEX``)."""
        return ["mxtransfer-worker", *copy_arguments(self.manifest_uri, self.report_uri, self.shard_count,
                                                     self.options)]

def report_uri_for(report_root: str, transfer_id: str) -> str:
    """``<report_root>/<transfer_id>/``."""
    return str(S3Uri.parse(report_root).join(transfer_id + "/"))


def tag_value(text: str) -> str:
    """``text`` as an AWS tag value: at most 256 characters of letters, digits, spaces and ``+-=._:/@``."""
    return re.sub(r"[^\w +\-=.:/@]", "_", text)[:256]


def transfer_xcom(transfer_id: str, manifest_uri: str, report_uri: str, destination: str, handle: dict) -> dict:
    """What ``S3BatchCopyOperator`` returns and ``BatchFleetSensor`` takes: the transfer's ids and locations plus
    its backend's handle (``backend``, ``job_ids``, ``shard_count`` and backend-specific ids). JSON only: no
    credentials and no object keys."""
    return {"transfer_id": transfer_id, "manifest_uri": manifest_uri, "report_uri": report_uri,
            "destination": destination, **handle}
