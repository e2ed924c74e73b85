"""Asset events (Dataset events on Airflow 2) for the destination prefix of a finished transfer.

A transfer's destination is known only when the task runs (it is templated, often from a mapped task group), so
the tasks that judge a finished transfer (``BatchFleetSensor``, and ``S3BatchCopyOperator`` when it waits) declare
an *asset alias* as outlet and, on success, add the destination prefix's asset to it with the transfer summary as
the event's extra. A DAG scheduled on ``destination_asset("s3://bucket/prefix/")`` then runs when that prefix's
new objects have landed. The extra holds counts, bytes, timings and report locations: no keys, no credentials.
"""

from __future__ import annotations

from airflow.providers.common.compat.assets import Asset, AssetAlias

from airflow_provider_mxtransfer.compat import asset_alias_registered
from mxtransfer_worker.s3uri import S3Uri

#: The asset alias transfer tasks declare unless given another (``asset_alias``); None declares none.
TRANSFER_ASSET_ALIAS = "mxtransfer-destinations"
#: Transfer summary fields copied into an event's extra. Flat values only: Airflow 2.10 hashes the extra's items.
EXTRA_FIELDS = ("rows", "succeeded", "skipped", "failed", "bytes_copied", "bytes_skipped", "seconds",
                "objects_per_second", "mib_per_second", "shard_count", "report_csv", "report_json", "report_html")


def destination_asset(destination: str) -> Asset:
    """The asset of an ``s3://bucket/prefix/`` destination (the same for the producer and any consumer)."""
    return Asset(uri=str(S3Uri.parse(destination)))


def with_asset_alias(outlets, alias: str | None) -> list:
    """``outlets`` (a task's) plus the asset alias named ``alias``, if any and not already there."""
    outlets = list(outlets or [])
    if alias and not any(isinstance(outlet, AssetAlias) and outlet.name == alias for outlet in outlets):
        outlets.append(AssetAlias(name=alias))
    return outlets


def event_extra(transfer: dict, totals: dict) -> dict:
    """The extra of a finished transfer's asset event: its id, destination and summary (see ``EXTRA_FIELDS``)."""
    return {"transfer_id": transfer["transfer_id"], "destination": transfer["destination"],
            **{name: totals[name] for name in EXTRA_FIELDS if name in totals}}


def emit_destination_event(task, context, transfer: dict, totals: dict) -> None:
    """Add the destination's asset, with the summary as extra, to each asset alias among ``task``'s outlets."""
    aliases = [outlet for outlet in task.outlets or [] if isinstance(outlet, AssetAlias)]
    unregistered = [alias.name for alias in aliases if not asset_alias_registered(alias.name)]
    if unregistered:
        task.log.warning("no asset event through %s: not in the metadata database (a DAG run by dag.test() on "
                         "Airflow 2 before the scheduler parsed it)", ", ".join(unregistered))
        aliases = [alias for alias in aliases if alias.name not in unregistered]
    if not aliases:
        return
    asset, extra = destination_asset(transfer["destination"]), event_extra(transfer, totals)
    for alias in aliases:
        context["outlet_events"][alias].add(asset, extra=extra)
    task.log.info("asset event for %s (through %s): %d objects, %d copied, %d skipped", asset.uri,
                  ", ".join(alias.name for alias in aliases), totals["rows"], totals["succeeded"], totals["skipped"])
