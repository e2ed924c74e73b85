"""The DAG files as shipped: they load with the example provider list and have the shape the docs describe."""

from __future__ import annotations

import json

import pytest
from dag_testlib import DAGS, load_dag

from airflow_provider_mxtransfer.config import ConfigError

EXAMPLE_STACKS = DAGS / "config" / "mxtransfer_stacks.example.json"


def test_aggregation_dag_maps_one_task_group_per_example_provider(monkeypatch):
    monkeypatch.delenv("MXTRANSFER_PROVIDERS_FILE", raising=False)
    monkeypatch.delenv("MXTRANSFER_COMPUTE")
    dag = load_dag("mxtransfer_aggregation")
    group = dag.task_group_dict["transfer_provider"]  # a MappedTaskGroup: its mapped list has no public accessor
    assert [provider["name"] for provider in group._expand_input.value["provider"]] == [
        "acme-studios", "northwind-news", "globex-sport"]
    assert set(dag.task_dict) == {f"transfer_provider.{name}" for name in ("plan", "inventory", "copy", "wait", "result")} | {"summary"}
    copy, wait = dag.task_dict["transfer_provider.copy"], dag.task_dict["transfer_provider.wait"]
    assert copy.pool == wait.pool == "mxtransfer_transfers"
    assert copy.compute == "batch" and copy.job_queue is None  # the default backend; no stacks file
    assert dag.task_dict["transfer_provider.inventory"].downstream_task_ids == {"transfer_provider.copy",
                                                                                 "transfer_provider.result"}
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable" and not dag.catchup
    assert {"full_listing", "skip_identical", "multipart_threshold_mib", "part_size_mib"} <= set(dag.params)


def test_copy_prefix_dag_is_manual_and_chains_inventory_copy_wait():
    dag = load_dag("mxtransfer_copy_prefix")
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.task_dict["inventory"].downstream_task_ids == {"copy"}
    assert dag.task_dict["copy"].downstream_task_ids == {"wait"}
    assert dag.task_dict["copy"].compute == "local"
    assert {"source", "destination", "manifest_prefix", "report_prefix", "aws_conn_id", "include"} <= set(dag.params)
    assert (dag.params["manifest_prefix"], dag.params["job_queue"]) == ("s3://mx-transfer-work/manifests/",
                                                                      "mxtransfer-spot")


def test_both_dags_default_to_the_deployed_stack_from_the_stacks_file(monkeypatch):
    monkeypatch.setenv("MXTRANSFER_STACKS_FILE", str(EXAMPLE_STACKS))
    monkeypatch.delenv("MXTRANSFER_PROVIDERS_FILE", raising=False)
    queue = "arn:aws:batch:us-east-1:123456789012:job-queue/mxtransfer-subscriber-queue"
    copy = load_dag("mxtransfer_aggregation").task_dict["transfer_provider.copy"]
    assert (copy.job_queue, copy.job_definition) == (queue, "mxtransfer-subscriber-worker")
    assert copy.report_root == "s3://mx-transfer-work/reports/"  # given in providers.yaml: it wins
    params = load_dag("mxtransfer_copy_prefix").params
    assert (params["job_queue"], params["job_definition"]) == (queue, "mxtransfer-subscriber-worker")
    assert (params["manifest_prefix"], params["report_prefix"]) == ("s3://mx-transfer-work/manifests/",
                                                                    "s3://mx-transfer-work/reports/")


def test_a_broken_stacks_file_stops_the_dag_files_naming_it(monkeypatch, tmp_path):
    path = tmp_path / "mxtransfer_stacks.json"
    path.write_text("{")
    monkeypatch.setenv("MXTRANSFER_STACKS_FILE", str(path))
    for name in ("mxtransfer_aggregation", "mxtransfer_copy_prefix"):
        with pytest.raises(ConfigError, match=f"{path}: cannot read the stacks file"):
            load_dag(name)


def test_the_provider_list_can_come_from_an_airflow_variable(monkeypatch):
    document = {"destination": {"bucket": "mx-from-variable"},
                "work": {"manifests": "s3://mx-work/m/", "reports": "s3://mx-work/r/"},
                "providers": [{"name": "solo", "source_bucket": "solo-media", "aws_conn_id": "aws_solo",
                               "destination_prefix": "solo/"}]}
    monkeypatch.setenv("AIRFLOW_VAR_MXTRANSFER_PROVIDERS", json.dumps(document))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_SOLO", '{"conn_type": "aws"}')
    dag = load_dag("mxtransfer_aggregation")
    group = dag.task_group_dict["transfer_provider"]
    assert [provider["name"] for provider in group._expand_input.value["provider"]] == ["solo"]


def test_a_broken_provider_list_stops_the_dag_file_with_the_cause(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_MXTRANSFER_PROVIDERS", "providers: [")
    with pytest.raises(ConfigError, match="Airflow Variable mxtransfer_providers: not valid YAML"):
        load_dag("mxtransfer_aggregation")


def test_the_aggregation_dag_does_not_load_with_an_unknown_connection(monkeypatch):
    monkeypatch.delenv("MXTRANSFER_PROVIDERS_FILE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_NORTHWIND")
    with pytest.raises(ConfigError, match=r"providers.yaml: unknown Airflow connection 'aws_northwind' \(used by "
                                          r"providers\[1\] \(northwind-news\)\): create an AWS connection"):
        load_dag("mxtransfer_aggregation")
