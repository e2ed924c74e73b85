"""Shared helpers for tests/infra (a plainly named module, so test files never import `conftest` by name)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
TEMPLATES = INFRA / "templates"
TRANSFER_TEMPLATE = TEMPLATES / "transfer-stack.yaml"
ECR_TEMPLATE = TEMPLATES / "ecr.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def load_infra_module(name: str):
    """Import infra/<name>.py (infra/ is not a package) under a private module name."""
    module_name = f"mxtransfer_infra_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, INFRA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


@dataclass
class DeployedStack:
    name: str
    side: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    stack: dict = field(repr=False)
    buckets: dict[str, str] = field(default_factory=dict)


def stack_parameters(template_path: Path, given: dict[str, str], stack_params) -> list[dict]:
    """CloudFormation Parameters for ``given`` values, resolved and checked as `make install` does.

    Everything goes through infra/stack_params.py's resolver (non-interactive), which also fills in the
    template defaults explicitly: moto 5.2.5 does not split a CommaDelimitedList *default* into a list (it does
    split passed values), while CloudFormation does; passing every value keeps both the same.
    """
    template = stack_params.load_template(str(template_path))
    resolved = stack_params.resolve(template, params_file=given, interactive=False)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in resolved.items()]


def create_stack(aws_client, name: str, template_path: Path, parameters: list[dict]) -> dict:
    cloudformation = aws_client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=template_path.read_text(),
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if "FAILED" in e["ResourceStatus"]]
        raise AssertionError(f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason')} {failed}")
    return stack
