"""Run one shard of a transfer: the one implementation behind the worker CLI and the provider's local backend."""

from __future__ import annotations

from .manifest import open_manifest
from .options import CopyOptions
from .report import ShardReport
from .runner import copy_rows
from .sharding import shard_rows


def run_shard(client, manifest_uri: str, options: CopyOptions, report_uri: str, shard_index: int = 0,
              shard_count: int = 1) -> dict:
    """Copy the rows of shard ``shard_index`` of ``shard_count`` of the manifest, upload the shard's report
    under ``report_uri`` and return its summary (see ``ShardReport.summary``; ``failed`` counts failed rows)."""
    rows = shard_rows(lambda: open_manifest(client, manifest_uri), shard_index, shard_count)
    report = ShardReport(shard_index, shard_count)
    try:
        copy_rows(client, rows, options, report.add)
        csv_uri, json_uri = report.upload(client, report_uri)
    finally:
        report.close()
    return {**report.summary(), "report_csv": csv_uri, "report_json": json_uri}
