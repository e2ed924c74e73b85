"""Airflow and moto Batch for provider tests: the Airflow home, database and AWS connection of
``tests/airflow_env.py`` (DAGS_FOLDER ``tests/provider/dags``), and a Batch queue in simple mode."""

from __future__ import annotations

import json
import urllib.request

import pytest
from airflow_env import airflow_db, aws_connection, provider_dag_bundle  # noqa: F401 - shared with tests/infra


@pytest.fixture(scope="session")
def batch_queue(s3_server, aws_connection):  # noqa: F811 - requests the imported fixture
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
