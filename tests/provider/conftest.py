"""Airflow and moto Batch for provider tests: a throw-away Airflow home with a sqlite DB whose DAGS_FOLDER is
``tests/provider/dags``, an AWS connection pointing at moto's server, and a Batch queue in simple mode."""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path

import sys

import pytest

sys.path.append(str(Path(__file__).parent / "dags"))

# One home per process: xdist workers inherit the controller's environment, so it is always overwritten.
_HOME = tempfile.mkdtemp(prefix=f"mxtransfer-airflow-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
for _name, _value in {
    "AIRFLOW_HOME": _HOME,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags"),
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


@pytest.fixture(scope="session")
def batch_queue(s3_server, aws_connection):
    """A Batch job queue and worker job definition on moto's server in simple mode (jobs end at submission)."""
    import boto3

    request = urllib.request.Request(f"{s3_server}/moto-api/config", method="POST",
                                     data=json.dumps({"batch": {"use_docker": False}}).encode())
    urllib.request.urlopen(request).close()
    iam = boto3.client("iam", endpoint_url=s3_server)
    batch = boto3.client("batch", endpoint_url=s3_server)
    role = iam.create_role(RoleName="mxtransfer-batch-service", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"Service": "batch.amazonaws.com"}}]}))["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName="mxtransfer", type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName="mxtransfer", state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    definition = batch.register_job_definition(jobDefinitionName="mxtransfer-worker", type="container",
                                               containerProperties={"image": "mxtransfer-worker:test",
                                                                    "command": ["mxtransfer-worker", "--help"],
                                                                    "vcpus": 2, "memory": 4096})
    return {"job_queue": queue["jobQueueName"], "job_definition": definition["jobDefinitionName"], "client": batch}
