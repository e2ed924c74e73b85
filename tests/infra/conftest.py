"""Fixtures for the AWS side: the infra/ helper modules, and the CloudFormation stacks deployed into moto.

The shared constants and helpers live in infra_testlib.py (import that, never `conftest`). The stacks go into the session's moto server from ``tests/conftest.py`` (``s3_server``, which also points
``AWS_ENDPOINT_URL`` at it), so any code under test that builds its own boto3 clients reaches the same Batch,
IAM and S3. Batch runs in moto's simple mode (no Docker): jobs are SUCCEEDED at the first ``describe_jobs``.

Reusable fixtures (session scope, one deployment per xdist worker):

* ``subscriber_stack`` - outputs (OutputKey -> value) of a subscriber stack with a created VPC, the on-demand
  fallback and the S3 Batch Operations backend; ``subscriber_stack_info`` has the buckets and parameters too.
* ``publisher_stack`` - outputs of a publisher stack in caller-given subnets/security group, minimal options.
* ``stacks_config_file`` - the DAG config JSON written from both stacks' ``describe_stacks`` by
  ``infra/stack_outputs.py``, as the DAGs will read it.
* ``deploy_transfer_stack`` - deploy another variant: ``deploy_transfer_stack(side, **parameters)``.

Airflow (``airflow_db``, ``aws_connection``, the provider's test DAGs) comes from ``tests/airflow_env.py``.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile

import pytest
from airflow_env import airflow_db, aws_connection, provider_dag_bundle  # noqa: F401 - shared with tests/provider
from infra_testlib import (
    ACCOUNT,
    REGION,
    TRANSFER_TEMPLATE,
    DeployedStack,
    create_stack,
    load_infra_module,
    stack_parameters,
    unique,
)

@pytest.fixture(scope="session")
def stack_outputs_module():
    return load_infra_module("stack_outputs")


@pytest.fixture(scope="session")
def stack_params_module():
    return load_infra_module("stack_params")


@pytest.fixture(scope="session")
def policy_check_module():
    return load_infra_module("policy_check")


@pytest.fixture(scope="session")
def aws_endpoint(s3_server):
    """The session's moto server with Batch in simple (no Docker) mode and one moto IAM gap closed.

    moto 5.2.5's policy validator refuses any S3 ARN with a region unless it is an access point, but IAM
    accepts S3 Batch Operations job ARNs (arn:aws:s3:<region>:<account>:job/*), which the Airflow policy uses
    for s3:DescribeJob. The server runs in this process, so the fixture adds "job/" to moto's list for the
    session and restores it afterwards.
    """
    from moto.iam import policy_validation

    request = urllib.request.Request(
        f"{s3_server}/moto-api/config",
        data=json.dumps({"batch": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        assert response.status in (200, 201)
    s3_rule = policy_validation.SERVICE_TYPE_REGION_INFORMATION_ERROR_ASSOCIATIONS["s3"]
    saved = list(s3_rule.get("valid_starting_values", []))
    s3_rule["valid_starting_values"] = saved + ["job/"]
    yield s3_server
    s3_rule["valid_starting_values"] = saved


@pytest.fixture(scope="session")
def aws_client(aws_endpoint):
    """aws_client("batch") -> a boto3 client for the moto server."""
    import boto3

    session = boto3.session.Session(region_name=REGION)
    cache = {}

    def _client(service: str):
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=aws_endpoint)
        return cache[service]

    return _client


@pytest.fixture(scope="session")
def deploy_transfer_stack(aws_client, stack_params_module):
    """deploy_transfer_stack(side, **parameters) -> DeployedStack; buckets for the data paths are created."""

    def _deploy(side: str, name: str | None = None, create_buckets: bool = True, **given: str) -> DeployedStack:
        s3 = aws_client("s3")
        name = name or unique(f"mxt-{side[:3]}")
        buckets = {}
        if create_buckets:
            buckets = {
                "source_a": unique("src-a"),
                "source_b": unique("src-b"),
                "destination": unique("dst"),
                "work": unique("work"),
            }
            for bucket in buckets.values():
                s3.create_bucket(Bucket=bucket)
            given.setdefault("SourceLocations", f"{buckets['source_a']}/media/,{buckets['source_b']}/")
            given.setdefault("DestinationBucket", buckets["destination"])
            given.setdefault("WorkBucket", buckets["work"])
        given.setdefault("Image", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mxtransfer-worker:test")
        given["Side"] = side
        parameters = stack_parameters(TRANSFER_TEMPLATE, given, stack_params_module)
        stack = create_stack(aws_client, name, TRANSFER_TEMPLATE, parameters)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
        return DeployedStack(name, side, values, outputs, stack, buckets)

    return _deploy


@pytest.fixture(scope="session")
def driver_code(aws_client):
    """A placeholder driver zip in a moto bucket (the real driver lives in worker/, not written yet)."""
    s3 = aws_client("s3")
    bucket = unique("driver-code")
    s3.create_bucket(Bucket=bucket)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mxtransfer_worker/lambda_driver.py", "def handler(event, context):\n    return {}\n")
    s3.put_object(Bucket=bucket, Key="mxtransfer/driver/test.zip", Body=buffer.getvalue())
    return bucket, "mxtransfer/driver/test.zip"


@pytest.fixture(scope="session")
def airflow_role(aws_client):
    """An existing 'MWAA execution role' the subscriber stack attaches its policies to."""
    iam = aws_client("iam")
    name = unique("mwaa-exec")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "airflow-env.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


@pytest.fixture(scope="session")
def subscriber_stack_info(deploy_transfer_stack, driver_code, airflow_role) -> DeployedStack:
    bucket, key = driver_code
    return deploy_transfer_stack(
        "subscriber",
        DestinationPrefix="incoming/",
        SourceKmsKeyArns=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
        DestinationKmsKeyArns=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/66666666-7777-8888-9999-000000000000",
        SourceRoleArns="arn:aws:iam::210987654321:role/provider-read",
        EnableOnDemandFallback="true",
        EnableS3BatchOperations="true",
        DriverCodeBucket=bucket,
        DriverCodeKey=key,
        AirflowExecutionRoleName=airflow_role,
        MaxvCpus="48",
    )


@pytest.fixture(scope="session")
def subscriber_stack(subscriber_stack_info) -> dict[str, str]:
    """Outputs of the deployed subscriber stack (JobQueueArn, JobDefinitionArn, JobRoleArn, ...)."""
    return subscriber_stack_info.outputs


@pytest.fixture(scope="session")
def caller_network(aws_client):
    """A VPC, two subnets and a security group 'the caller already has'."""
    ec2 = aws_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for cidr, az in (("10.77.0.0/20", "a"), ("10.77.16.0/20", "b"))
    ]
    group = ec2.create_security_group(GroupName=unique("workers"), Description="workers", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnets": subnets, "security_group": group}


@pytest.fixture(scope="session")
def publisher_stack_info(deploy_transfer_stack, caller_network) -> DeployedStack:
    return deploy_transfer_stack(
        "publisher",
        SubnetIds=",".join(caller_network["subnets"]),
        SecurityGroupIds=caller_network["security_group"],
    )


@pytest.fixture(scope="session")
def publisher_stack(publisher_stack_info) -> dict[str, str]:
    """Outputs of the deployed publisher stack."""
    return publisher_stack_info.outputs


@pytest.fixture(scope="session")
def stacks_config_file(tmp_path_factory, aws_client, stack_outputs_module, subscriber_stack_info, publisher_stack_info):
    """dags/config/mxtransfer_stacks.json as `make outputs` writes it, from moto's describe_stacks."""
    cloudformation = aws_client("cloudformation")
    responses = [cloudformation.describe_stacks(StackName=s.name) for s in (subscriber_stack_info, publisher_stack_info)]
    path = tmp_path_factory.mktemp("dag-config") / "mxtransfer_stacks.json"
    stack_outputs_module.write_config(stack_outputs_module.config_from_describe_stacks(responses), str(path))
    return path
