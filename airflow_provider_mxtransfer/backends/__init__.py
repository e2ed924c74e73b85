"""Compute backends: where the shards of a transfer run, and how to watch and stop them.

Interface (a backend is a class with these members; ``get_backend`` builds one by name):

``__init__(self, *, aws_conn_id, region_name, verify, botocore_config, **options)``
    AWS connection parameters as in the Amazon provider, plus the operator's ``backend_options`` (e.g. the
    AWS Batch job queue). It must also accept being built without ``options``: the sensor and the trigger
    build backends only to watch and stop transfers.
``name: str``
    The ``compute`` value that selects it.
``find_existing(self, transfer_id: str) -> dict | None``
    The handle of a transfer with this id that is still in flight (submitted, queued or running), to
    reattach to on a task retry instead of submitting a duplicate; None when there is none.
``submit(self, plan: TransferPlan) -> dict``
    Start (or, for a synchronous backend, run) the transfer; returns its handle.
``status(self, transfer: dict) -> FleetStatus`` and ``async astatus(self, transfer: dict) -> FleetStatus``
    Where the transfer stands; ``transfer`` is the operator's XCom (``transfer_xcom``: the plan's ids plus the
    handle). ``astatus`` runs in the triggerer's event loop and must not block it.
``terminate(self, transfer: dict, reason: str) -> None``
    Stop every job of the transfer (idempotent; jobs already finished are left alone).
``report_sources(self, transfer: dict) -> list``
    Where the transfer's row reports are: engine report sources (``mxtransfer_worker.report.ShardReports``,
    ``CompletionReport``) that together cover the shard indexes ``status`` uses, each manifest row once.
    ``TransferMonitor`` reads progress totals (``report_totals``), the merged ``transfer.csv``/``transfer.json``
    (``merge_reports``) and the failure message's rows from them, the same way for every backend. ``batch`` and
    ``local``: the workers' shard reports under the report prefix; ``s3-batch-operations``: each job's
    completion report, then each AWS Batch hand-off's worker report.

A handle is a JSON-serialisable dict with ``backend`` (the name), ``job_ids`` (list of str) and
``shard_count`` (int), plus backend-specific keys: ``batch`` adds ``job_name`` and ``job_queue``;
``s3-batch-operations`` (``airflow_provider_mxtransfer.backends.s3_batch_operations.S3BatchOperationsBackend``)
adds ``s3_batch_operations_job_id``, which the S3 Batch Operations extra link shows. Handles end up in XCom:
never put credentials or object keys in them.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"

#: ``compute`` name -> "module:class" of the backend, imported only when used.
BACKENDS = {
    "batch": "airflow_provider_mxtransfer.backends.batch:BatchBackend",
    "s3-batch-operations": "airflow_provider_mxtransfer.backends.s3_batch_operations:S3BatchOperationsBackend",
    "local": "airflow_provider_mxtransfer.backends.local:LocalBackend",
}


@dataclass
class FleetStatus:
    """Where a transfer's shards stand. ``state`` is ``running``, ``succeeded`` or ``failed``; shard counts
    are ``succeeded``, ``failed`` and ``running`` (started) out of ``shard_count``, the rest still queued.
    ``failed_shards`` lists failed shard indexes, ``log_urls`` CloudWatch links of (some of) them by shard
    index, ``reason`` the backend's own explanation of a failure (e.g. a job's status reason)."""

    state: str
    shard_count: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    failed_shards: list[int] = field(default_factory=list)
    log_urls: dict[int, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    @property
    def queued(self) -> int:
        return max(self.shard_count - self.succeeded - self.failed - self.running, 0)

    def to_dict(self) -> dict:
        """JSON form (for trigger events); ``from_dict`` reverses it."""
        return {**asdict(self), "log_urls": {str(index): url for index, url in self.log_urls.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> FleetStatus:
        return cls(**{**data, "log_urls": {int(index): url for index, url in data.get("log_urls", {}).items()}})


def get_backend(name: str, **arguments):
    """The backend called ``name`` (see ``BACKENDS``), built with ``arguments``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown compute backend {name!r}: choose one of {', '.join(sorted(BACKENDS))}")
    module_name, _, class_name = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)(**arguments)
