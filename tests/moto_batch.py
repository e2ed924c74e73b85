"""An AWS Batch job queue and worker job definition on moto's server, in moto's simple mode (no Docker: jobs
end at submission unless something else runs them), for the provider and end-to-end tests."""

from __future__ import annotations

import json
import urllib.request


def create_batch_queue(endpoint: str, name: str) -> dict:
    """Create the service role, an unmanaged compute environment, the job queue ``name`` and the job definition
    ``<name>-worker`` on moto's server at ``endpoint``; returns their names and a Batch client."""
    import boto3

    request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"batch": {"use_docker": False}}).encode())
    urllib.request.urlopen(request).close()
    iam = boto3.client("iam", endpoint_url=endpoint)
    batch = boto3.client("batch", endpoint_url=endpoint)
    role = iam.create_role(RoleName=f"{name}-batch-service", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"Service": "batch.amazonaws.com"}}]}))["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName=name, type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    definition = batch.register_job_definition(jobDefinitionName=f"{name}-worker", type="container",
                                               containerProperties={"image": "mxtransfer-worker:test",
                                                                    "command": ["mxtransfer-worker", "--help"],
                                                                    "vcpus": 2, "memory": 4096})
    return {"job_queue": queue["jobQueueName"], "job_definition": definition["jobDefinitionName"], "client": batch}
