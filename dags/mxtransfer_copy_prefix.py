"""Copy one prefix to another, once: trigger with ``source`` and ``destination`` (``s3://bucket/prefix/``).

``inventory`` lists the source (with the optional ``include``/``exclude`` patterns and size bounds, leaving
out objects already identical at the destination unless ``skip_identical`` is off) into a manifest under
``manifest_prefix``; ``copy`` copies it server-side on the compute backend (the environment variable
``MXTRANSFER_COMPUTE``, else the Variable ``mxtransfer_compute``, else ``batch``), reporting under
``report_prefix``; ``wait`` waits for it and fails naming the objects that failed. Everything runs with the
connection ``aws_conn_id``, which must read the source and write the destination and the two prefixes.

``job_queue``, ``job_definition``, ``manifest_prefix`` and ``report_prefix`` default to the deployed stack's,
from ``dags/config/mxtransfer_stacks.json`` (``make outputs``; ``MXTRANSFER_STACKS_FILE`` names another file,
``MXTRANSFER_STACK`` the stack when it lists several), else to ``manifests/`` and ``reports/`` under
``MXTRANSFER_WORK_PREFIX`` (default ``s3://mx-transfer-work/``) and the queue ``mxtransfer-spot``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

try:
    from airflow.sdk import Param, Variable, dag, task
except ImportError:  # Airflow 2.10
    from airflow.models.param import Param
    from airflow.models.variable import Variable
    from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mxtransfer.config import COMPUTE_VARIABLE, choose_compute, stack_defaults
from airflow_provider_mxtransfer.operators.copy import S3BatchCopyOperator
from airflow_provider_mxtransfer.operators.inventory import GenerateInventoryOperator
from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor
from mxtransfer_worker.s3uri import S3Uri

DAG_ID = "mxtransfer_copy_prefix"
POOL = "mxtransfer_transfers"
COMPUTE = choose_compute(Variable.get(COMPUTE_VARIABLE, None))
MiB = 2**20
_WORK = S3Uri.parse(os.environ.get("MXTRANSFER_WORK_PREFIX") or "s3://mx-transfer-work/").join("")
DEFAULTS = {"manifests": str(_WORK.join("manifests/")), "reports": str(_WORK.join("reports/")),
            "job_queue": "mxtransfer-spot", "job_definition": "mxtransfer-worker",
            **stack_defaults(Path(__file__).parent / "config" / "mxtransfer_stacks.json")}
_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


@task(multiple_outputs=True)
def plan(params=None, run_id=None) -> dict:
    """The manifest and report locations and the copy options, from the run's params."""
    source, destination = S3Uri.parse(params["source"]), S3Uri.parse(params["destination"])
    copy_options = {"source_prefix": source.key, "overwrite": params["overwrite"],
                    "copy_annotations": params["copy_annotations"]}
    if params.get("storage_class"):
        copy_options["storage_class"] = params["storage_class"]
    for param, option in (("multipart_threshold_mib", "multipart_threshold"), ("part_size_mib", "part_size")):
        if params.get(param):
            copy_options[option] = int(params[param]) * MiB
    return {
        "manifest_uri": str(S3Uri.parse(params["manifest_prefix"]).join(f"{DAG_ID}/{run_id}/manifest.csv")),
        "report_root": str(S3Uri.parse(params["report_prefix"]).join("")),
        "skip_identical_at": str(destination) if params["skip_identical"] else "",
        "source_prefix": source.key,
        "copy_options": copy_options,
    }


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "source": Param("s3://source-bucket/prefix/", type="string", pattern=_URI, description="s3://bucket/prefix/ to copy"),
        "destination": Param("s3://destination-bucket/prefix/", type="string", pattern=_URI,
                             description="s3://bucket/prefix/ to copy to: the source prefix is replaced by it"),
        "manifest_prefix": Param(DEFAULTS["manifests"], type="string", pattern=_URI,
                                 description="s3://bucket/prefix/ under which the manifest is written"),
        "report_prefix": Param(DEFAULTS["reports"], type="string", pattern=_URI,
                               description="s3://bucket/prefix/ under which the report is written"),
        "aws_conn_id": Param("aws_default", type="string"),
        "include": Param([], type="array", items={"type": "string"}, description="glob patterns to keep"),
        "exclude": Param([], type="array", items={"type": "string"}, description="glob patterns to leave out"),
        "min_size": Param(None, type=["null", "integer"], minimum=0),
        "max_size": Param(None, type=["null", "integer"], minimum=0),
        "skip_identical": Param(True, type="boolean", description="leave out objects identical at the destination"),
        "overwrite": Param(False, type="boolean", description="replace destination objects that differ"),
        "copy_annotations": Param(True, type="boolean", description="copy S3 object annotations too"),
        "storage_class": Param(None, type=["null", "string"]),
        "multipart_threshold_mib": Param(None, type=["null", "integer"], minimum=1),
        "part_size_mib": Param(None, type=["null", "integer"], minimum=5),
        "job_queue": Param(DEFAULTS["job_queue"], type="string", description="AWS Batch job queue (compute batch)"),
        "job_definition": Param(DEFAULTS["job_definition"], type="string", description="AWS Batch job definition"),
    },
    tags=["mxtransfer"],
    doc_md=__doc__,
)
def mxtransfer_copy_prefix():
    planned = plan()
    inventory = GenerateInventoryOperator(
        task_id="inventory",
        aws_conn_id="{{ params.aws_conn_id }}",
        manifest_uri=planned["manifest_uri"],
        sources=["{{ params.source }}"],
        include="{{ params.include }}",
        exclude="{{ params.exclude }}",
        min_size="{{ params.min_size }}",
        max_size="{{ params.max_size }}",
        skip_identical_at=planned["skip_identical_at"],
        source_prefix=planned["source_prefix"],
    )
    copy = S3BatchCopyOperator(
        task_id="copy",
        aws_conn_id="{{ params.aws_conn_id }}",
        manifest_uri=planned["manifest_uri"],
        destination="{{ params.destination }}",
        copy_options=planned["copy_options"],
        report_root=planned["report_root"],
        compute=COMPUTE,
        job_queue="{{ params.job_queue }}",
        job_definition="{{ params.job_definition }}",
        pool=POOL,
    )
    wait = BatchFleetSensor(
        task_id="wait",
        transfer=copy.output,
        aws_conn_id="{{ params.aws_conn_id }}",
        deferrable=True,
        poll_interval=60,
        timeout=timedelta(days=3).total_seconds(),
        pool=POOL,
    )
    inventory >> copy >> wait


copy_prefix_dag = mxtransfer_copy_prefix()
