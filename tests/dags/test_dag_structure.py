"""The DAG files as shipped: they load with the example provider list and have the shape the docs describe."""

from __future__ import annotations

import json

import pytest
from dag_testlib import load_dag

from airflow_provider_mxtransfer.config import ConfigError


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
    assert copy.compute == "batch" and copy.job_queue == "mxtransfer-spot"  # the default backend
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
    assert {"source", "destination", "work_prefix", "aws_conn_id", "include", "exclude"} <= set(dag.params)


def test_the_provider_list_can_come_from_an_airflow_variable(monkeypatch):
    document = {"destination": {"bucket": "mx-from-variable"},
                "work": {"manifests": "s3://mx-work/m/", "reports": "s3://mx-work/r/"},
                "providers": [{"name": "solo", "source_bucket": "solo-media", "aws_conn_id": "aws_solo",
                               "destination_prefix": "solo/"}]}
    monkeypatch.setenv("AIRFLOW_VAR_MXTRANSFER_PROVIDERS", json.dumps(document))
    dag = load_dag("mxtransfer_aggregation")
    group = dag.task_group_dict["transfer_provider"]
    assert [provider["name"] for provider in group._expand_input.value["provider"]] == ["solo"]


def test_a_broken_provider_list_stops_the_dag_file_with_the_cause(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_MXTRANSFER_PROVIDERS", "providers: [")
    with pytest.raises(ConfigError, match="Airflow Variable mxtransfer_providers: not valid YAML"):
        load_dag("mxtransfer_aggregation")
