"""Daily aggregation of many providers' media into one bucket, one mapped task group per provider.

Each provider (from ``dags/config/providers.yaml``, or the Airflow Variable ``mxtransfer_providers`` holding the
same document; see ``airflow_provider_mxtransfer.config``) gets, in its own map index of ``transfer_provider``:

1. ``plan``: the provider's manifest location and filters for this run;
2. ``inventory``: lists the provider's bucket/prefix with its cross-account connection, keeping objects
   last modified in the run's data interval (``[data_interval_start, data_interval_end)``, so consecutive
   runs select each object once) and leaving out objects already identical at the destination;
3. ``copy``: starts the server-side copy on the chosen compute backend;
4. ``wait``: waits for the transfer, merges its report and fails naming the objects that failed;
5. ``result``: the provider's line of the run's summary.

``summary`` then logs one line per provider and writes ``summary.json`` next to the reports. Providers are
independent: one whose transfer fails fails its own ``wait`` (naming the objects and causes) while the others
finish; the run then fails and writes no summary.

The AWS Batch job queue and job definition and the manifest and report prefixes default to the deployed
stack's, from ``dags/config/mxtransfer_stacks.json`` (``make outputs``; ``MXTRANSFER_STACKS_FILE`` names another
file, ``MXTRANSFER_STACK`` the stack when it lists several); the provider list's own values win.

The compute backend is the environment variable ``MXTRANSFER_COMPUTE``, else the Variable
``mxtransfer_compute``, else ``batch``. ``copy`` and ``wait`` run in the pool ``mxtransfer_transfers``, whose
size caps how many transfers run at once (create it with ``include_deferred`` so waiting transfers count).
Params: ``full_listing`` ignores the data interval (a first load or a catch-up of history),
``skip_identical`` turns the pre-filter off, ``multipart_threshold_mib``/``part_size_mib`` tune the copy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.exceptions import AirflowNotFoundException
from airflow.providers.common.compat.sdk import BaseHook

try:
    from airflow.sdk import CronDataIntervalTimetable, Param, Variable, dag, task, task_group
except ImportError:  # Airflow 2.10
    from airflow.decorators import task_group
    from airflow.models.param import Param
    from airflow.models.variable import Variable
    from airflow.providers.common.compat.sdk import dag, task
    from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_mxtransfer.config import COMPUTE_VARIABLE, PROVIDERS_VARIABLE, choose_compute, load_dag_config
from airflow_provider_mxtransfer.operators.copy import S3BatchCopyOperator
from airflow_provider_mxtransfer.operators.inventory import GenerateInventoryOperator
from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor

DAG_ID = "mxtransfer_aggregation"
POOL = "mxtransfer_transfers"
MiB = 2**20


def connection_exists(conn_id: str) -> bool:
    """Whether Airflow knows the connection (its database, a secrets backend or an ``AIRFLOW_CONN_*`` variable)."""
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


CONFIG = load_dag_config(Path(__file__).parent / "config", Variable.get(PROVIDERS_VARIABLE, None), connection_exists)
COMPUTE = choose_compute(Variable.get(COMPUTE_VARIABLE, None))
PROVIDERS = [
    {**asdict(p), "include": list(p.include), "exclude": list(p.exclude), "source": p.source_uri}
    for p in CONFIG.providers
]
log = logging.getLogger(__name__)


@task(multiple_outputs=True)
def plan(provider: dict, params=None, run_id=None, data_interval_start=None, data_interval_end=None) -> dict:
    """Where this provider's manifest goes, which objects to select and how to copy them in this run."""
    copy_options = {**CONFIG.copy_options, "source_prefix": provider["source_prefix"]}
    for param, option in (("multipart_threshold_mib", "multipart_threshold"), ("part_size_mib", "part_size")):
        if params.get(param):
            copy_options[option] = int(params[param]) * MiB
    incremental = not params.get("full_listing")
    destination = f"s3://{CONFIG.destination_bucket}/{provider['destination_prefix']}"
    return {
        "source_conn_id": provider["aws_conn_id"],
        "sources": [provider["source"]],
        "source_prefix": provider["source_prefix"],
        "include": provider["include"],
        "exclude": provider["exclude"],
        "min_size": provider["min_size"],
        "max_size": provider["max_size"],
        "manifest_uri": f"{CONFIG.manifest_root}{DAG_ID}/{run_id}/{provider['name']}/manifest.csv",
        "modified_after": data_interval_start.isoformat() if incremental and data_interval_start else "",
        "modified_before": data_interval_end.isoformat() if incremental and data_interval_end else "",
        "skip_identical_at": destination if params.get("skip_identical") else "",
        "destination": destination,
        "copy_options": copy_options,
    }


@task
def result(provider: dict, selection: dict, totals: dict) -> dict:
    """The provider's line of the summary: what was selected, copied, skipped and failed, and how fast."""
    return {
        "provider": provider["name"], "source": provider["source"],
        "selected_objects": selection["objects"], "selected_bytes": selection["bytes"],
        "skipped_identical": selection["skipped_identical"], "copied": totals["succeeded"],
        "bytes_copied": totals["bytes_copied"], "skipped": totals["skipped"], "failed": totals["failed"],
        "seconds": totals["seconds"], "mib_per_second": totals["mib_per_second"],
        "objects_per_second": totals["objects_per_second"], "report": totals.get("report_csv"),
    }


@task
def summary(results: list[dict], run_id=None) -> dict:
    """Log one line per provider and write the run's ``summary.json`` under the report root."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    lines = list(results)
    for line in lines:
        log.info(
            "%s: %d objects selected (%d bytes), %d copied (%d bytes), %d skipped by the copy, %d already identical, "
            "%d failed; %s s, %s MiB/s, %s objects/s", line["provider"], line["selected_objects"],
            line["selected_bytes"], line["copied"], line["bytes_copied"], line["skipped"], line["skipped_identical"],
            line["failed"], line["seconds"], line["mib_per_second"], line["objects_per_second"],
        )
    document = {"dag_id": DAG_ID, "run_id": run_id, "compute": COMPUTE, "providers": lines}
    uri = f"{CONFIG.report_root}{DAG_ID}/{run_id}/summary.json"
    S3Hook(aws_conn_id=CONFIG.destination_conn_id).load_string(
        json.dumps(document, indent=2), key=uri, replace=True
    )
    return {**document, "summary_uri": uri}


@task_group
def transfer_provider(provider: dict):
    """Inventory, copy and wait for one provider (``provider`` is resolved per map index, so the tasks read its
    fields from ``plan``'s outputs)."""
    planned = plan(provider)
    inventory = GenerateInventoryOperator(
        task_id="inventory",
        aws_conn_id=planned["source_conn_id"],
        manifest_uri=planned["manifest_uri"],
        sources=planned["sources"],
        include=planned["include"],
        exclude=planned["exclude"],
        min_size=planned["min_size"],
        max_size=planned["max_size"],
        modified_after=planned["modified_after"],
        modified_before=planned["modified_before"],
        skip_identical_at=planned["skip_identical_at"],
        source_prefix=planned["source_prefix"],
    )
    copy = S3BatchCopyOperator(
        task_id="copy",
        aws_conn_id=CONFIG.destination_conn_id,
        manifest_uri=planned["manifest_uri"],
        destination=planned["destination"],
        copy_options=planned["copy_options"],
        report_root=CONFIG.report_root,
        compute=COMPUTE,
        job_queue=CONFIG.job_queue,
        job_definition=CONFIG.job_definition,
        pool=POOL,
    )
    wait = BatchFleetSensor(
        task_id="wait",
        transfer=copy.output,
        aws_conn_id=CONFIG.destination_conn_id,
        deferrable=True,
        poll_interval=CONFIG.poll_interval,
        timeout=timedelta(days=3).total_seconds(),
        pool=POOL,
    )
    inventory >> copy
    return result(provider, inventory.output, wait.output)


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "full_listing": Param(False, type="boolean", description="select every object, not only the data interval's"),
        "skip_identical": Param(True, type="boolean", description="leave out objects identical at the destination"),
        "multipart_threshold_mib": Param(None, type=["null", "integer"], minimum=1,
                                         description="copy objects above this size by parts (default: the engine's)"),
        "part_size_mib": Param(None, type=["null", "integer"], minimum=5, description="smallest part of multipart copies (MiB; larger objects get larger parts)"),
    },
    tags=["mxtransfer"],
    doc_md=__doc__,
)
def mxtransfer_aggregation():
    summary(transfer_provider.expand(provider=PROVIDERS))


aggregation_dag = mxtransfer_aggregation()
