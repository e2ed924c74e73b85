"""Turn CloudFormation ``describe-stacks`` output into the DAG configuration file, and read that file back.

Deployment and DAGs meet in one JSON file (default ``dags/config/mxtransfer_stacks.json``)::

    {
      "format": "mxtransfer-stacks/1",
      "stacks": {
        "mxtransfer-subscriber": {
          "stack_name": "mxtransfer-subscriber",
          "side": "subscriber",
          "region": "us-east-1",
          "job_queue_arn": "arn:aws:batch:...:job-queue/mxtransfer-subscriber-queue",
          "job_definition_arn": "arn:aws:batch:...:job-definition/mxtransfer-subscriber-worker:3",
          "job_definition_name": "mxtransfer-subscriber-worker",
          "job_role_arn": "...", "airflow_policy_arn": "...",
          "destination_uri": "s3://...", "manifest_uri": "s3://...", "report_uri": "s3://...",
          "worker_log_group_name": "...",
          "on_demand_job_queue_arn": null, "s3_batch_operations_role_arn": null, "driver_function_arn": null,
          ...
        }
      }
    }

Every stack output appears under its snake_case name; the optional ones are ``null`` when the feature is off, so
a DAG can test them directly. The module needs only the standard library (no Airflow, no boto3), so DAG files
and tests can import it, and the Makefile runs it as a script::

    aws cloudformation describe-stacks --stack-name mxtransfer-subscriber --output json > sub.json
    python infra/stack_outputs.py --out dags/config/mxtransfer_stacks.json sub.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

FORMAT = "mxtransfer-stacks/1"
DEFAULT_CONFIG_PATH = os.path.join("dags", "config", "mxtransfer_stacks.json")

#: Outputs every transfer stack has; a config entry without them is refused.
REQUIRED_OUTPUTS = (
    "Side",
    "Region",
    "JobQueueArn",
    "JobDefinitionArn",
    "JobDefinitionName",
    "JobRoleArn",
    "AirflowPolicyArn",
    "DestinationUri",
    "ManifestUri",
    "ReportUri",
    "WorkerLogGroupName",
)
#: Outputs that exist only when their feature is enabled; written as null otherwise.
OPTIONAL_OUTPUTS = (
    "OnDemandJobQueueArn",
    "AirflowS3BatchOperationsPolicyArn",
    "S3BatchOperationsRoleArn",
    "DriverFunctionArn",
    "VpcId",
)


#: Stack states whose outputs describe live resources (UPDATE_ROLLBACK_COMPLETE: the previous, working version).
USABLE_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")


class StackConfigError(ValueError):
    """The describe-stacks output or the config file is not what a transfer stack produces."""


def snake_case(name: str) -> str:
    """``JobQueueArn`` -> ``job_queue_arn``; ``VpcId`` -> ``vpc_id``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def stack_entry(stack: Mapping[str, Any]) -> dict[str, Any]:
    """One config entry from one element of ``describe-stacks``' ``Stacks`` list."""
    name = stack.get("StackName")
    status = stack.get("StackStatus", "")
    if not name:
        raise StackConfigError("stack without StackName")
    if status not in USABLE_STATUSES:
        raise StackConfigError(f"stack {name} is {status or 'without status'}, not deployed")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise StackConfigError(f"stack {name} lacks outputs {', '.join(missing)}: is it a transfer stack?")
    entry: dict[str, Any] = {"stack_name": name}
    for key in OPTIONAL_OUTPUTS:
        entry[snake_case(key)] = None
    for key, value in outputs.items():
        entry[snake_case(key)] = value
    return entry


def config_from_describe_stacks(responses: Iterable[Mapping[str, Any]], base: Mapping[str, Any] | None = None) -> dict:
    """Merge ``describe-stacks`` responses (AWS CLI JSON or boto3 dicts) into a config, on top of ``base``."""
    config = {"format": FORMAT, "stacks": dict((base or {}).get("stacks", {}))}
    for response in responses:
        stacks = response.get("Stacks")
        if not stacks:
            raise StackConfigError("describe-stacks output without Stacks")
        for stack in stacks:
            entry = stack_entry(stack)
            config["stacks"][entry["stack_name"]] = entry
    return config


def load_config(path: str = DEFAULT_CONFIG_PATH) -> dict:
    """Read and check a config file written by :func:`write_config`."""
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if config.get("format") != FORMAT:
        raise StackConfigError(f"{path}: format {config.get('format')!r}, expected {FORMAT!r}")
    return config


def get_stack(config: Mapping[str, Any], name_or_side: str | None = None) -> dict:
    """The entry for a stack name or a side (``publisher``/``subscriber``); the only entry when not given."""
    stacks = config.get("stacks", {})
    if name_or_side in stacks:
        return stacks[name_or_side]
    matches = [entry for entry in stacks.values() if name_or_side is None or entry.get("side") == name_or_side]
    if len(matches) != 1:
        known = ", ".join(sorted(stacks)) or "none"
        raise StackConfigError(f"{len(matches)} stacks match {name_or_side!r} (known: {known}); name one")
    return matches[0]


def write_config(config: Mapping[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("describe_stacks_json", nargs="+", help="files with `aws cloudformation describe-stacks` JSON")
    parser.add_argument("--out", default=DEFAULT_CONFIG_PATH, help="config file to write (merged if it exists)")
    parser.add_argument("--replace", action="store_true", help="drop entries of stacks not given")
    args = parser.parse_args(argv)
    base = None
    if os.path.exists(args.out) and not args.replace:
        base = load_config(args.out)
    responses = []
    for path in args.describe_stacks_json:
        with open(path, encoding="utf-8") as handle:
            responses.append(json.load(handle))
    try:
        config = config_from_describe_stacks(responses, base)
    except StackConfigError as err:
        print(f"stack_outputs: {err}", file=sys.stderr)
        return 1
    write_config(config, args.out)
    for name, entry in sorted(config["stacks"].items()):
        print(f"{args.out}: {name} ({entry['side']}, {entry['region']}) queue={entry['job_queue_arn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
