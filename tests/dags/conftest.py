"""Airflow for the DAG tests: a temporary AIRFLOW_HOME with a sqlite database per test process, ``dags/`` as
the DAGs folder, the ``local`` compute backend and dummy AWS connections (credentials and endpoint come from
the environment that ``tests/conftest.py`` and its ``s3_server`` fixture set). Set before Airflow is imported."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"
_HOME = os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mxtransfer-airflow-"))
os.environ.update({
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "MXTRANSFER_COMPUTE": "local",
    "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
})

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db(s3_server):
    """A fresh metadata database with the transfers pool."""
    from airflow.models.pool import Pool
    from airflow.utils.db import resetdb

    resetdb()
    Pool.create_or_update_pool("mxtransfer_transfers", slots=4, description="mxtransfer transfers",
                               include_deferred=True)
    return s3_server


def load_dag(name: str):
    """The DAG defined in ``dags/<name>.py``, parsed now (so it sees the current environment)."""
    spec = importlib.util.spec_from_file_location(f"test_dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    assert len(dags) == 1, f"expected one DAG in {module.__file__}, found {len(dags)}"
    return dags[0]


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):
    """The XCom value ``task_id`` pushed under ``key`` in ``dag_run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(select(XComModel).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id,
            XComModel.key == key, XComModel.map_index == map_index)).one()
        return XComModel.deserialize_value(row)
