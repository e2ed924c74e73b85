"""Deploy the stacks into moto's CloudFormation and use what they create: Batch queue, job definition, roles.

moto's Batch runs in simple mode (no Docker), so a submitted array job and its children are SUCCEEDED at the
first describe_jobs: these tests prove the queue and job definition the stacks create accept the worker's array
jobs, not that the worker container runs.
"""

from __future__ import annotations

import ast
import json

import pytest
from infra_testlib import ACCOUNT, ECR_TEMPLATE, REGION, TRANSFER_TEMPLATE, create_stack, unique


def _document(document):
    if not isinstance(document, str):
        return document
    try:
        return json.loads(document)
    except ValueError:
        # moto 5.2.5 stores inline policies of CloudFormation-made roles as a Python repr, not JSON
        return ast.literal_eval(document)


def _policy_documents_of_role(iam, role_arn):
    name = role_arn.rsplit("/", 1)[1]
    documents = {}
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        documents[attached["PolicyName"]] = _document(document)
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        documents[policy_name] = _document(document)
    return documents


def _statements(documents, sid):
    found = [s for d in documents.values() for s in d["Statement"] if s.get("Sid") == sid]
    assert found, f"no statement {sid} in {list(documents)}"
    return found


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_subscriber_stack_outputs(subscriber_stack_info):
    outputs = subscriber_stack_info.outputs
    name = subscriber_stack_info.name
    assert outputs["Side"] == "subscriber"
    assert outputs["Region"] == REGION
    assert outputs["JobQueueArn"] == f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}-queue"
    assert outputs["OnDemandJobQueueArn"] == f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}-on-demand-queue"
    assert outputs["JobDefinitionArn"].startswith(f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}-worker:")
    assert outputs["JobDefinitionName"] == f"{name}-worker"
    for key in ("JobRoleArn", "S3BatchOperationsRoleArn"):
        assert outputs[key].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    for key in ("AirflowPolicyArn", "AirflowS3BatchOperationsPolicyArn"):
        assert outputs[key].startswith(f"arn:aws:iam::{ACCOUNT}:policy/")
    assert outputs["DriverFunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}-s3batch-driver"
    buckets = subscriber_stack_info.buckets
    assert outputs["DestinationUri"] == f"s3://{buckets['destination']}/incoming/"
    assert outputs["ManifestUri"] == f"s3://{buckets['work']}/mxtransfer/manifests/"
    assert outputs["ReportUri"] == f"s3://{buckets['work']}/mxtransfer/reports/"
    assert outputs["VpcId"].startswith("vpc-")


def test_subscriber_fleet_is_spot_first_with_on_demand_fallback(aws_client, subscriber_stack):
    batch = aws_client("batch")
    queue = batch.describe_job_queues(jobQueues=[subscriber_stack["JobQueueArn"]])["jobQueues"][0]
    assert queue["state"] == "ENABLED"
    order = sorted(queue["computeEnvironmentOrder"], key=lambda e: e["order"])
    assert len(order) == 2
    environments = batch.describe_compute_environments(computeEnvironments=[e["computeEnvironment"] for e in order])
    by_arn = {e["computeEnvironmentArn"]: e for e in environments["computeEnvironments"]}
    spot, on_demand = (by_arn[e["computeEnvironment"]] for e in order)
    assert spot["type"] == "MANAGED" and spot["serviceRole"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    resources = spot["computeResources"]
    assert resources["type"] == "SPOT"
    assert resources["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert int(resources["minvCpus"]) == 0 and int(resources["maxvCpus"]) == 48
    assert resources["instanceTypes"] == ["c6in", "m6in", "c5n", "m5n"]
    assert on_demand["computeResources"]["type"] == "EC2"

    # created network: the subnets are in the stack's VPC, whose route table has an S3 gateway endpoint
    ec2 = aws_client("ec2")
    vpc_id = subscriber_stack["VpcId"]
    subnets = ec2.describe_subnets(SubnetIds=resources["subnets"])["Subnets"]
    assert {s["VpcId"] for s in subnets} == {vpc_id} and len(subnets) == 2
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == [f"com.amazonaws.{REGION}.s3"]
    assert endpoints[0]["VpcEndpointType"] == "Gateway" and endpoints[0]["RouteTableIds"]

    on_demand_queue = batch.describe_job_queues(jobQueues=[subscriber_stack["OnDemandJobQueueArn"]])["jobQueues"][0]
    assert [e["computeEnvironment"] for e in on_demand_queue["computeEnvironmentOrder"]] == [order[1]["computeEnvironment"]]


def test_job_definition_runs_the_worker_with_retries(aws_client, subscriber_stack_info):
    outputs = subscriber_stack_info.outputs
    batch = aws_client("batch")
    definitions = batch.describe_job_definitions(jobDefinitions=[outputs["JobDefinitionArn"]])["jobDefinitions"]
    assert len(definitions) == 1
    definition = definitions[0]
    assert definition["status"] == "ACTIVE" and definition["type"] == "container"
    container = definition["containerProperties"]
    assert container["image"] == subscriber_stack_info.parameters["Image"]
    assert container["jobRoleArn"] == outputs["JobRoleArn"]
    assert container["command"][:2] == ["mxtransfer-worker", "copy"]
    assert {str(r["type"]): str(r["value"]) for r in container["resourceRequirements"]} == {"VCPU": "4", "MEMORY": "8192"}
    assert container["logConfiguration"]["options"]["awslogs-group"] == outputs["WorkerLogGroupName"]
    assert definition["parameters"]["destination"] == outputs["DestinationUri"]
    assert definition["parameters"]["report"] == outputs["ReportUri"]
    retry = definition["retryStrategy"]
    assert int(retry["attempts"]) == 5
    rules = [{k.lower(): str(v).upper() if k.lower() == "action" else v for k, v in r.items()} for r in retry["evaluateOnExit"]]
    assert rules == [
        {"onstatusreason": "Host EC2*", "action": "RETRY"},
        {"onexitcode": "75", "action": "RETRY"},
        {"onreason": "*", "action": "EXIT"},
    ]


def _batch_action(rules, exit_code=None, reason="", status_reason=""):
    """What AWS Batch does after a failed attempt, per its documented evaluateOnExit semantics.

    Conditions are tried in order; in each, every given pattern must match (a pattern is exact or ends in `*` for
    a prefix match); the first matching condition's action applies; no match at all means RETRY.
    """

    def matches(pattern, value):
        if value is None:
            return False
        value = str(value)
        return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern

    for rule in rules:
        rule = {k.lower(): v for k, v in rule.items()}
        checks = [("onexitcode", exit_code), ("onreason", reason), ("onstatusreason", status_reason)]
        if all(matches(rule[key], value) for key, value in checks if key in rule):
            return rule["action"].upper()
    return "RETRY"


@pytest.mark.parametrize(
    "attempt, action",
    [
        ({"status_reason": "Host EC2 (instance i-0123456789abcdef0) terminated."}, "RETRY"),  # Spot reclaim
        ({"exit_code": 75, "reason": "", "status_reason": "Essential container in task exited"}, "RETRY"),
        ({"exit_code": 1, "reason": "", "status_reason": "Essential container in task exited"}, "EXIT"),
        ({"exit_code": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}, "EXIT"),
        ({"exit_code": 2, "reason": "CannotStartContainerError: bad command"}, "EXIT"),
    ],
)
def test_retry_strategy_retries_only_reclaims_and_tempfail(aws_client, subscriber_stack, attempt, action):
    batch = aws_client("batch")
    (definition,) = batch.describe_job_definitions(jobDefinitions=[subscriber_stack["JobDefinitionArn"]])["jobDefinitions"]
    assert _batch_action(definition["retryStrategy"]["evaluateOnExit"], **attempt) == action


def test_array_job_on_the_stack_queue_succeeds(aws_client, subscriber_stack):
    batch = aws_client("batch")
    job = batch.submit_job(
        jobName=unique("copy"),
        jobQueue=subscriber_stack["JobQueueArn"],
        jobDefinition=subscriber_stack["JobDefinitionArn"],
        arrayProperties={"size": 3},
        parameters={"manifest": "s3://work/mxtransfer/manifests/run-1/manifest.csv", "shardCount": "3"},
    )
    described = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert described["status"] == "SUCCEEDED"
    assert described["jobQueue"] == subscriber_stack["JobQueueArn"]
    assert described["arrayProperties"]["size"] == 3
    children = [f"{job['jobId']}:{i}" for i in range(3)]
    assert [j["status"] for j in batch.describe_jobs(jobs=children)["jobs"]] == ["SUCCEEDED"] * 3


def test_job_role_reads_only_sources_and_writes_only_destination(aws_client, subscriber_stack_info):
    iam = aws_client("iam")
    outputs, buckets = subscriber_stack_info.outputs, subscriber_stack_info.buckets
    role = iam.get_role(RoleName=outputs["JobRoleArn"].rsplit("/", 1)[1])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}

    documents = _policy_documents_of_role(iam, outputs["JobRoleArn"])
    (read,) = _statements(documents, "ReadSourceObjects")
    # Fn::Split/Fn::Join turned "a/media/,b/" into one object ARN per location
    assert sorted(_as_list(read["Resource"])) == sorted(
        [f"arn:aws:s3:::{buckets['source_a']}/media/*", f"arn:aws:s3:::{buckets['source_b']}/*"]
    )
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in _as_list(read["Action"]))
    (write,) = _statements(documents, "WriteDestinationPrefix")
    assert write["Resource"] == f"arn:aws:s3:::{buckets['destination']}/incoming/*"
    (listing,) = _statements(documents, "ListDestinationPrefix")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "incoming/*"}}
    (decrypt,) = _statements(documents, "DecryptSources")
    assert _as_list(decrypt["Resource"]) == [subscriber_stack_info.parameters["SourceKmsKeyArns"]]
    (encrypt,) = _statements(documents, "EncryptDestination")
    assert _as_list(encrypt["Resource"]) == [subscriber_stack_info.parameters["DestinationKmsKeyArns"]]
    (assume,) = _statements(documents, "AssumeProviderRoles")
    assert _as_list(assume["Resource"]) == ["arn:aws:iam::210987654321:role/provider-read"]

    # the driver Lambda's role carries the same data policies (one definition, attached twice)
    lambda_ = aws_client("lambda")
    driver_role = lambda_.get_function(FunctionName=outputs["DriverFunctionArn"])["Configuration"]["Role"]
    assert set(_policy_documents_of_role(iam, driver_role)) >= {
        name for name in documents if "DataAccess" in name or "Kms" in name
    }


def test_airflow_role_gets_queue_and_passrole_policies(aws_client, subscriber_stack_info, airflow_role):
    iam = aws_client("iam")
    outputs = subscriber_stack_info.outputs
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=airflow_role)["AttachedPolicies"]}
    assert attached == {outputs["AirflowPolicyArn"], outputs["AirflowS3BatchOperationsPolicyArn"]}
    documents = _policy_documents_of_role(iam, f"arn:aws:iam::{ACCOUNT}:role/{airflow_role}")
    (submit,) = _statements(documents, "SubmitToThisQueue")
    assert outputs["JobQueueArn"] in submit["Resource"] and outputs["OnDemandJobQueueArn"] in submit["Resource"]
    passed = {s["Resource"] for s in _statements(documents, "PassJobRole") + _statements(documents, "PassS3BatchOperationsRole")}
    assert passed == {outputs["JobRoleArn"], outputs["S3BatchOperationsRoleArn"]}


def test_s3_batch_operations_role_invokes_only_the_driver(aws_client, subscriber_stack_info):
    iam = aws_client("iam")
    outputs = subscriber_stack_info.outputs
    documents = _policy_documents_of_role(iam, outputs["S3BatchOperationsRoleArn"])
    (invoke,) = _statements(documents, "InvokeDriver")
    assert invoke["Resource"] == [outputs["DriverFunctionArn"], outputs["DriverFunctionArn"] + ":*"]
    lambda_ = aws_client("lambda")
    config = lambda_.get_function(FunctionName=outputs["DriverFunctionArn"])["Configuration"]
    assert config["Handler"] == "mxtransfer_worker.lambda_driver.handler"
    assert config["Environment"]["Variables"]["MXTRANSFER_JOB_QUEUE"] == outputs["JobQueueArn"]


def test_publisher_stack_uses_the_callers_network(aws_client, publisher_stack, caller_network):
    batch = aws_client("batch")
    queue = batch.describe_job_queues(jobQueues=[publisher_stack["JobQueueArn"]])["jobQueues"][0]
    assert len(queue["computeEnvironmentOrder"]) == 1  # no on-demand fallback by default
    (environment,) = batch.describe_compute_environments(
        computeEnvironments=[queue["computeEnvironmentOrder"][0]["computeEnvironment"]]
    )["computeEnvironments"]
    assert environment["computeResources"]["subnets"] == caller_network["subnets"]
    assert environment["computeResources"]["securityGroupIds"] == [caller_network["security_group"]]
    assert "VpcId" not in publisher_stack and "S3BatchOperationsRoleArn" not in publisher_stack
    assert publisher_stack["Side"] == "publisher"
    job = batch.submit_job(
        jobName=unique("copy"),
        jobQueue=publisher_stack["JobQueueArn"],
        jobDefinition=publisher_stack["JobDefinitionName"],
        arrayProperties={"size": 3},
    )
    assert batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["status"] == "SUCCEEDED"


def test_dag_config_from_stack_outputs_drives_a_submission(aws_client, stacks_config_file, stack_outputs_module, subscriber_stack_info):
    """The DAG's view: read the config file `make outputs` writes, submit with what it names."""
    config = stack_outputs_module.load_config(str(stacks_config_file))
    assert set(config["stacks"]) >= {subscriber_stack_info.name}
    entry = stack_outputs_module.get_stack(config, "subscriber")
    assert entry == stack_outputs_module.get_stack(config, subscriber_stack_info.name)
    assert entry["job_queue_arn"] == subscriber_stack_info.outputs["JobQueueArn"]
    assert entry["s3_batch_operations_role_arn"] == subscriber_stack_info.outputs["S3BatchOperationsRoleArn"]
    publisher = stack_outputs_module.get_stack(config, "publisher")
    assert publisher["on_demand_job_queue_arn"] is None and publisher["driver_function_arn"] is None

    batch = aws_client("batch")
    job = batch.submit_job(
        jobName=unique("from-config"),
        jobQueue=entry["job_queue_arn"],
        jobDefinition=entry["job_definition_arn"],
        arrayProperties={"size": 3},
        parameters={"manifest": entry["manifest_uri"] + "run/manifest.csv", "shardCount": "3"},
    )
    assert batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["status"] == "SUCCEEDED"


def test_ecr_stack(aws_client):
    name = unique("mxt-ecr")
    repository = unique("mxtransfer-worker")
    stack = create_stack(
        aws_client, name, ECR_TEMPLATE, [{"ParameterKey": "RepositoryName", "ParameterValue": repository}]
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RepositoryName"] == repository
    assert outputs["RepositoryUri"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}"
    (described,) = aws_client("ecr").describe_repositories(repositoryNames=[repository])["repositories"]
    assert described["imageTagMutability"] == "IMMUTABLE"


def test_bad_parameters_are_refused_before_deploying(stack_params_module):
    template = stack_params_module.load_template(str(TRANSFER_TEMPLATE))
    base = {"Side": "subscriber", "Image": "img:1", "DestinationBucket": "dst-bkt", "WorkBucket": "work-bkt"}
    for bad in (
        {"SourceLocations": "whole-bucket-without-slash"},
        {"SourceLocations": "*/"},
        {"SourceLocations": "ok-bucket/", "SourceKmsKeyArns": "*"},
        {"SourceLocations": "ok-bucket/", "SourceKmsKeyArns": "arn:aws:kms:us-east-1:123456789012:alias/media"},
        {"SourceLocations": "ok-bucket/", "DestinationPrefix": "no-trailing-slash"},
        {"SourceLocations": "ok-bucket/", "MaxvCpus": "0"},
        {"SourceLocations": "ok-bucket/ other-bucket/"},
    ):
        with pytest.raises(stack_params_module.ParameterError):
            stack_params_module.resolve(template, params_file={**base, **bad})
    with pytest.raises(stack_params_module.ParameterError, match="unknown parameters"):
        stack_params_module.resolve(template, params_file={**base, "SourceLocation": "typo/"})
    with pytest.raises(stack_params_module.ParameterError, match="SourceLocations is required"):
        stack_params_module.resolve(template, params_file=base)


def test_interactive_prompts_ask_and_recheck(stack_params_module):
    template = stack_params_module.load_template(str(TRANSFER_TEMPLATE))
    scripted = {"SourceLocations": ["bad bucket/", "src-bkt/media/"]}  # a rejected answer is asked again
    asked = []

    def ask(prompt):
        name = prompt.strip().split(" ")[0].rstrip(":")
        asked.append(name)
        assert len(asked) < 50, f"prompt loop: {asked}"
        return scripted[name].pop(0) if scripted.get(name) else ""

    resolved = stack_params_module.resolve(
        template,
        fixed={"Side": "publisher"},
        params_file={"DestinationBucket": "dst-bkt", "WorkBucket": "work-bkt"},
        defaults={"Image": "repo/worker:abc"},
        interactive=True,
        ask=ask,
        say=lambda text: None,
    )
    assert resolved["Side"] == "publisher"
    assert resolved["SourceLocations"] == "src-bkt/media/"
    assert resolved["Image"] == "repo/worker:abc"  # the offered default, taken with an empty answer
    assert resolved["DriverCodeBucket"] == ""  # not asked: S3 Batch Operations left off
    assert "DriverCodeBucket" not in asked
    assert asked[0] == "Image" and asked.count("SourceLocations") == 2
    assert "DestinationBucket" not in asked  # given in the params file
