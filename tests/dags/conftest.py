"""Airflow for the DAG tests: a temporary AIRFLOW_HOME with a sqlite database per test process (xdist workers
inherit the controller's environment, so it is always overwritten; it applies if Airflow is not imported yet),
``dags/`` as the DAG bundle, the ``local`` compute backend and dummy AWS connections
(credentials and endpoint come from ``tests/conftest.py`` and its ``s3_server`` fixture).

Other test folders configure Airflow for themselves in the same process: the settings that ``dag.test()``
reads when it runs (the bundle's path, the compute backend, connections) are set per test, not at import."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from airflow_home import use_dag_bundle, use_temporary_airflow_home

# Before anything imports Airflow (dag_testlib does), which would otherwise read ~/airflow's configuration.
use_temporary_airflow_home("dags", Path(__file__).resolve().parents[2] / "dags")

from dag_testlib import DAGS, OBJECTS  # noqa: E402

EXAMPLE = DAGS / "config" / "providers.yaml"

from demo.scenario import seed  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db(s3_server):
    """A metadata database with its tables and the transfers pool."""
    from airflow.models.pool import Pool
    from airflow.utils.db import resetdb

    resetdb()
    Pool.create_or_update_pool("mxtransfer_transfers", slots=4, description="mxtransfer transfers",
                               include_deferred=True)
    return s3_server


@pytest.fixture(autouse=True)
def dag_environment(monkeypatch, tmp_path):
    """``dags/`` as the only DAG bundle, the local backend, an ``aws_default`` without credentials and the
    example provider list's connections (the aggregation DAG refuses to load without them), and no stacks
    file (one written by ``make outputs`` into ``dags/config/`` would otherwise change the DAGs' defaults)."""
    use_dag_bundle(monkeypatch, "mxtransfer-dags", DAGS)
    monkeypatch.setenv("MXTRANSFER_COMPUTE", "local")
    for conn_id in ["aws_default"] + [entry["aws_conn_id"] for entry in yaml.safe_load(EXAMPLE.read_text())["providers"]]:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", '{"conn_type": "aws"}')
    monkeypatch.setenv("MXTRANSFER_STACKS_FILE", str(tmp_path / "no-stacks.json"))
    monkeypatch.delenv("MXTRANSFER_STACK", raising=False)


@pytest.fixture
def providers(s3, tmp_path, monkeypatch):
    """The demo's buckets at a small scale (a 6 MiB object above the 5 MiB threshold) and the provider list."""
    config = seed(s3, objects_per_provider=OBJECTS, big_object_bytes=6 * 2**20)
    for entry in config["providers"]:
        monkeypatch.setenv(f"AIRFLOW_CONN_{entry['aws_conn_id'].upper()}", '{"conn_type": "aws"}')
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    monkeypatch.setenv("MXTRANSFER_PROVIDERS_FILE", str(path))
    return config
