"""infra/infra.mk end to end with a stub `aws` CLI: what it prints, what it runs, what it writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from infra_testlib import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

STUB = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$*" in
  *"describe-stacks --stack-name mxtransfer-ecr"*) echo "123456789012.dkr.ecr.us-east-1.amazonaws.com/mxtransfer-worker";;
  *"describe-stacks --stack-name mxtransfer-subscriber --output json"*) cat "$STUB_DESCRIBE";;
  *"describe-stacks --stack-name"*"--output json"*) echo "Stack does not exist" >&2; exit 255;;
esac
"""


@pytest.fixture
def make(tmp_path):
    stub = tmp_path / "aws"
    stub.write_text(STUB)
    stub.chmod(0o755)
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"PY := {sys.executable}\ninclude infra/infra.mk\n")
    log = tmp_path / "aws.log"
    log.touch()

    def _make(*goals, env=None):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
        environ.update({"STUB_LOG": str(log), "STUB_DESCRIBE": str(tmp_path / "describe.json")}, **(env or {}))
        result = subprocess.run(
            ["make", "--no-print-directory", "-f", str(makefile), f"AWS={stub}", "INFRA_BUILD=" + str(tmp_path / "build"), *goals],
            cwd=REPO,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result, log.read_text().splitlines()

    return _make


SUBSCRIBER = {"SourceLocations": "src-a/media/,src-b/", "DestinationBucket": "dst-bkt", "WorkBucket": "work-bkt"}


def test_install_dry_run_prints_the_deploy_command_and_deploys_nothing(make):
    result, calls = make("install", "subscriber-stack", env={**SUBSCRIBER, "DRY_RUN": "1", "IMAGE_TAG": "abc123"})
    assert result.returncode == 0, result.stderr
    (printed,) = [line for line in result.stdout.splitlines() if "cloudformation deploy" in line]
    assert "--stack-name mxtransfer-subscriber --template-file infra/templates/transfer-stack.yaml" in printed
    assert "--capabilities CAPABILITY_IAM" in printed
    for word in (
        "Side=subscriber",
        "SourceLocations=src-a/media/,src-b/",
        "DestinationBucket=dst-bkt",
        "Image=123456789012.dkr.ecr.us-east-1.amazonaws.com/mxtransfer-worker:abc123",  # from the ECR stack
        "MaxvCpus=64",
    ):
        assert word in printed.split(), word
    assert not any("deploy" in call for call in calls)


def test_install_runs_exactly_the_printed_command(make, tmp_path):
    params = tmp_path / "publisher.params"
    params.write_text("# reusable params file\nSourceLocations=my-media/out/\nDestinationBucket=exchange-bkt\nWorkBucket=work-bkt\nImage=repo/worker:1\n")
    result, calls = make("install", "publisherhelper-stack", f"PARAMS_FILE={params}")
    assert result.returncode == 0, result.stderr
    printed = next(line for line in result.stdout.splitlines() if "cloudformation deploy" in line)
    deployed = [call for call in calls if call.startswith("cloudformation deploy")]
    assert len(deployed) == 1
    assert printed.split()[2:] == deployed[0].split()  # "+ <aws>" then the same words
    assert "Side=publisher" in deployed[0].split() and "Image=repo/worker:1" in deployed[0].split()
    assert any(call.startswith("cloudformation describe-stacks --stack-name mxtransfer-publisher") for call in calls)


def test_install_refuses_bad_parameters_before_any_deploy(make):
    result, calls = make("subscriber-stack", env={**SUBSCRIBER, "SourceKmsKeyArns": "*"})
    assert result.returncode != 0
    assert "SourceKmsKeyArns" in result.stderr
    assert not any("deploy" in call for call in calls)


def test_install_without_a_stack_goal_explains_usage(make):
    result, _ = make("install")
    assert result.returncode == 2 and "usage: make install" in result.stderr


def test_outputs_writes_the_dag_config(make, tmp_path):
    outputs = {
        "Side": "subscriber",
        "Region": "us-east-1",
        "JobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/mxtransfer-subscriber-queue",
        "JobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/mxtransfer-subscriber-worker:2",
        "JobDefinitionName": "mxtransfer-subscriber-worker",
        "JobRoleArn": "arn:aws:iam::123456789012:role/mxtransfer-subscriber-JobRole-X",
        "AirflowPolicyArn": "arn:aws:iam::123456789012:policy/mxtransfer-subscriber-AirflowPolicy-X",
        "DestinationUri": "s3://dst-bkt/incoming/",
        "ManifestUri": "s3://work-bkt/mxtransfer/manifests/",
        "ReportUri": "s3://work-bkt/mxtransfer/reports/",
        "WorkerLogGroupName": "/mxtransfer/mxtransfer-subscriber/worker",
    }
    describe = {
        "Stacks": [
            {
                "StackName": "mxtransfer-subscriber",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }
    (tmp_path / "describe.json").write_text(json.dumps(describe))
    config_path = tmp_path / "dags" / "mxtransfer_stacks.json"
    result, calls = make("outputs", f"DAG_CONFIG={config_path}")
    assert result.returncode == 0, result.stderr
    assert "mxtransfer-publisher not deployed, skipped" in result.stdout
    config = json.loads(config_path.read_text())
    entry = config["stacks"]["mxtransfer-subscriber"]
    assert entry["job_queue_arn"] == outputs["JobQueueArn"]
    assert entry["side"] == "subscriber" and entry["driver_function_arn"] is None


def test_example_dag_config_matches_the_reader():
    """dags/config/mxtransfer_stacks.example.json is what `make outputs` writes, and the reader accepts it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_so_example", REPO / "infra" / "stack_outputs.py")
    stack_outputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack_outputs)
    config = stack_outputs.load_config(str(REPO / "dags" / "config" / "mxtransfer_stacks.example.json"))
    entry = stack_outputs.get_stack(config, "subscriber")
    expected = {stack_outputs.snake_case(k) for k in stack_outputs.REQUIRED_OUTPUTS + stack_outputs.OPTIONAL_OUTPUTS}
    assert expected | {"stack_name"} == set(entry)
