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
from pathlib import Path

import pytest

from airflow_home import use_dag_bundle, use_temporary_airflow_home

PROVIDER_TESTS = Path(__file__).parent / "provider"
DAGS_FOLDER = PROVIDER_TESTS / "dags"
# The test DAGs and the helpers their stand-in for AWS Batch imports.
sys.path.extend(str(path) for path in (DAGS_FOLDER, PROVIDER_TESTS) if str(path) not in sys.path)

use_temporary_airflow_home("airflow", DAGS_FOLDER, AIRFLOW__CORE__UNIT_TEST_MODE="True")


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
    use_dag_bundle(monkeypatch, "mxtransfer-provider-test-dags", DAGS_FOLDER)
