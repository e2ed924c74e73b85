"""Runs when providers' new assets have landed: an example of a DAG downstream of the aggregation DAG.

The aggregation DAG's ``wait`` task emits, when a provider's transfer succeeds, an asset event (a dataset event
on Airflow 2) for the provider's destination prefix ``s3://<destination bucket>/<destination_prefix>``, with the
transfer summary as the event's extra (see ``airflow_provider_mxtransfer.assets``). This DAG is scheduled on
the destination prefixes of every provider in the same provider list (``dags/config/providers.yaml`` or the
Variable ``mxtransfer_providers``), so it runs after each transfer that landed something; ``landed`` reads the
triggering events and returns one line per provider transfer: put your own step (cataloguing, transcoding,
notifying the provider) after it. To wait for one provider only, schedule on ``destination_asset(...)`` of
that provider alone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

try:
    from airflow.sdk import Variable, dag, task
except ImportError:  # Airflow 2.10
    from airflow.models.variable import Variable
    from airflow.providers.common.compat.sdk import dag, task

from airflow.providers.common.compat.assets import AssetAny

from airflow_provider_mxtransfer.assets import destination_asset
from airflow_provider_mxtransfer.config import PROVIDERS_VARIABLE, load_dag_config

DAG_ID = "mxtransfer_landed"
CONFIG = load_dag_config(Path(__file__).parent / "config", Variable.get(PROVIDERS_VARIABLE, None))
#: Each provider's destination prefix as an asset, by provider name.
ASSETS = {provider.name: destination_asset(f"s3://{CONFIG.destination_bucket}/{provider.destination_prefix}")
          for provider in CONFIG.providers}
PROVIDER_BY_URI = {asset.uri: name for name, asset in ASSETS.items()}
log = logging.getLogger(__name__)


def triggering_events(context) -> list:
    """The asset (dataset) events that triggered this run, oldest first."""
    by_asset = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
    return [event for events in by_asset.values() for event in events]


@task
def landed(**context) -> list[dict]:
    """One line per transfer that landed: the provider and the summary its asset event carries."""
    lines = []
    for event in triggering_events(context):
        extra = dict(event.extra or {})
        provider = PROVIDER_BY_URI.get(destination_asset(extra["destination"]).uri)
        lines.append({"provider": provider, **extra})
        log.info("%s: %s objects landed at %s (%s copied, %s bytes; %s already there); report %s", provider,
                 extra.get("rows"), extra.get("destination"), extra.get("succeeded"), extra.get("bytes_copied"),
                 extra.get("skipped"), extra.get("report_html") or extra.get("report_csv"))
    return lines


@dag(
    dag_id=DAG_ID,
    schedule=AssetAny(*ASSETS.values()),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["mxtransfer"],
    doc_md=__doc__,
)
def mxtransfer_landed():
    landed()


landed_dag = mxtransfer_landed()
