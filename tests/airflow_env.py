"""Airflow for the tests that run the provider's test DAGs (``tests/provider/dags``) with ``dag.test()``: a
throw-away Airflow home with a sqlite DB, set up once per process when this module is first imported (it applies
if Airflow is not imported yet), and the fixtures ``airflow_db``, ``aws_connection`` and (autouse)
``provider_dag_bundle``. Conftests import the fixtures by name.

Other test folders configure Airflow for themselves in the same process, in any collection order, so the DAG
bundle that ``dag.test()`` reads is set per test, not at import."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

PROVIDER_TESTS = Path(__file__).parent / "provider"
DAGS_FOLDER = PROVIDER_TESTS / "dags"
# The test DAGs and the helpers their stand-in for AWS Batch imports.
sys.path.extend(str(path) for path in (DAGS_FOLDER, PROVIDER_TESTS) if str(path) not in sys.path)

# One home per process: xdist workers inherit the controller's environment, so it is always overwritten.
_HOME = tempfile.mkdtemp(prefix=f"mxtransfer-airflow-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
for _name, _value in {
    "AIRFLOW_HOME": _HOME,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
}.items():
    os.environ[_name] = _value


@pytest.fixture(scope="session")
def airflow_db():
    """An empty Airflow metadata database."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def aws_connection(s3_server):
    """``aws_default`` pointing at moto's server through the connection's ``endpoint_url`` extra."""
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"}})
    yield "aws_default"
    os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)


@pytest.fixture(autouse=True)
def provider_dag_bundle(monkeypatch):
    """``tests/provider/dags`` as the only DAG bundle, whatever folder's settings Airflow was imported with."""
    bundle = {"name": "mxtransfer-provider-test-dags",
              "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
              "kwargs": {"path": str(DAGS_FOLDER), "refresh_interval": 0}}
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
