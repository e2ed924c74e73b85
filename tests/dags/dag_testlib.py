"""Helpers for the DAG tests: the demo scenario's scale, load a DAG file, read an XCom of a finished ``dag.test()``
run, and the scheduler's side of asset (dataset) scheduling: DAGs synced to the database, the asset events and
queued runs a run left, the runs the scheduler creates from them, and ``dag.test()`` on such a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from unittest import mock

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from demo.scenario import PROVIDERS

DAGS = Path(__file__).resolve().parents[2] / "dags"
#: The ``dag.test()`` keyword that sets the run's logical date (Airflow 2 calls it ``execution_date``).
LOGICAL_DATE = "logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date"
#: The DAG bundle ``conftest.dag_environment`` configures (Airflow 3).
BUNDLE = "mxtransfer-dags"
OBJECTS = 8
#: Objects per provider of the demo scenario (``conftest.providers``): the first one also has the large object.
EXPECTED = {name: OBJECTS + (name == PROVIDERS[0]) for name in PROVIDERS}
MULTIPART = {"multipart_threshold_mib": 5, "part_size_mib": 5}


def load_dag(name: str):
    """The DAG defined in ``dags/<name>.py``, parsed now (so it sees the current environment)."""
    from airflow.providers.common.compat.sdk import DAG

    spec = importlib.util.spec_from_file_location(f"test_dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    assert len(dags) == 1, f"expected one DAG in {module.__file__}, found {len(dags)}"
    return dags[0]


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):
    """The XCom value ``task_id`` pushed under ``key`` in ``dag_run``."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2: XCom is the table's model and reads its rows deserialized
        from airflow.models.xcom import XCom

        return XCom.get_one(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key,
                            map_index=map_index)
    with create_session() as session:
        row = session.scalars(select(XComModel).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id,
            XComModel.key == key, XComModel.map_index == map_index)).one()
        return XComModel.deserialize_value(row)


def sync_dags() -> None:
    """Write every DAG in ``dags/`` to the metadata database as the DAG processor does, with the references
    the scheduler reads (which DAG is scheduled on which asset, which task has which outlets)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

        manager = DagBundlesManager()
        manager.sync_bundles_to_db()
        bundle = manager.get_bundle(BUNDLE)
        bundle.initialize()
        sync_bag_to_db(BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name),
                       bundle.name, bundle.version)
    else:
        from airflow.models.dagbag import DagBag

        DagBag(dag_folder=str(DAGS), include_examples=False).sync_to_db()


def unpause_only(dag_id: str) -> None:
    """Unpause ``dag_id`` and pause every other DAG, so the scheduler creates runs for that one only."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).values(is_paused=DagModel.dag_id != dag_id))


def asset_events(source_run) -> list[tuple[str, dict]]:
    """``(asset uri, extra)`` of the asset (dataset) events the DAG run ``source_run`` emitted, oldest first."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetEvent as Event
    else:
        from airflow.models.dataset import DatasetEvent as Event
    with create_session() as session:
        events = session.scalars(select(Event).where(Event.source_dag_id == source_run.dag_id,
                                                     Event.source_run_id == source_run.run_id).order_by(Event.id))
        return [((event.asset if AIRFLOW_V_3_0_PLUS else event.dataset).uri, dict(event.extra)) for event in events]


def queued_asset_runs(target_dag_id: str) -> int:
    """How many asset (dataset) events wait in the queue of ``target_dag_id`` for a run to be created."""
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetDagRunQueue as Queue
    else:
        from airflow.models.dataset import DatasetDagRunQueue as Queue
    with create_session() as session:
        return session.scalar(select(func.count()).select_from(Queue).where(Queue.target_dag_id == target_dag_id))


def scheduler_creates_runs():
    """One pass of the scheduler's run creation (``SchedulerJobRunner._create_dagruns_for_dags``, the step that
    turns queued asset events into asset-triggered runs); returns the runs it created."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit
    from sqlalchemy import select

    with create_session() as session:
        before = set(session.scalars(select(DagRun.id)))
        with prohibit_commit(session) as guard:
            SchedulerJobRunner(job=Job())._create_dagruns_for_dags(guard, session)
        session.expunge_all()
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.id.not_in(before))).all()
        session.expunge_all()
        return runs


def dag_test_on(dag, dag_run):
    """``dag.test()`` on ``dag_run`` (e.g. one the scheduler created from asset events) instead of a new manual
    run: ``dag.test()`` always makes its own run through the helper replaced here, which would drop the events
    the run consumed."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    def existing(*, dag, session, **kwargs):
        run = session.scalar(select(DagRun).where(DagRun.id == dag_run.id))
        run.dag, run.state = dag, "running"
        session.commit()
        return run

    helper = "airflow.models.dagrun.get_or_create_dagrun" if AIRFLOW_V_3_0_PLUS else "airflow.models.dag._get_or_create_dagrun"
    with mock.patch(helper, existing):
        return dag.test()
