"""Airflow and moto Batch for provider tests: the Airflow home, database and AWS connection of
``tests/airflow_env.py`` (DAGS_FOLDER ``tests/provider/dags``), and a Batch queue in simple mode."""

from __future__ import annotations

import pytest
from airflow_env import airflow_db, aws_connection, provider_dag_bundle  # noqa: F401 - shared with tests/infra
from moto_batch import create_batch_queue


@pytest.fixture(scope="session")
def batch_queue(s3_server, aws_connection):  # noqa: F811 - requests the imported fixture
    """A Batch job queue and worker job definition on moto's server in simple mode (jobs end at submission)."""
    return create_batch_queue(s3_server, "mxtransfer")
