"""Helpers for the DAG tests: load a DAG file, read an XCom of a finished ``dag.test()`` run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

DAGS = Path(__file__).resolve().parents[2] / "dags"
#: The ``dag.test()`` keyword that sets the run's logical date (Airflow 2 calls it ``execution_date``).
LOGICAL_DATE = "logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date"


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
