"""The aggregation DAG end to end with ``dag.test()`` on the local backend against moto's server, on the
demo's scenario (odd keys, metadata, one object copied by parts) and checked with the demo's verification."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import yaml
from dag_testlib import EXPECTED, LOGICAL_DATE, MULTIPART, OBJECTS, load_dag, xcom

from demo.scenario import BIG_KEY, PROVIDERS, verify
from mxtransfer_worker.s3uri import S3Uri

MiB = 2**20


def summary_of(s3, config, dag_run):
    reports = S3Uri.parse(config["work"]["reports"])
    body = s3.get_object(Bucket=reports.bucket, Key=f"{reports.key}mxtransfer_aggregation/{dag_run.run_id}/summary.json")
    return {line["provider"]: line for line in json.loads(body["Body"].read())["providers"]}


def destination_keys(s3, config):
    listed = s3.list_objects_v2(Bucket=config["destination"]["bucket"])
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_first_load_copies_every_provider_then_a_rerun_copies_nothing(airflow_db, s3, providers):
    dag = load_dag("mxtransfer_aggregation")
    conf = {"full_listing": True, **MULTIPART}
    first = dag.test(run_conf=conf)
    assert first.state == "success"
    assert verify(s3, providers) == (sum(EXPECTED.values()), [])
    expected_keys = []
    for entry in providers["providers"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=entry["source_bucket"], Prefix="exports/"):
            expected_keys += [entry["destination_prefix"] + item["Key"][len("exports/"):] for item in page["Contents"]]
    assert destination_keys(s3, providers) == sorted(expected_keys)  # nothing outside exports/ was copied
    summary = summary_of(s3, providers, first)
    for name, objects in EXPECTED.items():
        assert (summary[name]["selected_objects"], summary[name]["copied"], summary[name]["failed"]) == (objects, objects, 0)
    assert summary[PROVIDERS[0]]["bytes_copied"] > 6 * MiB
    assert xcom(first, "transfer_provider.inventory", map_index=1)["objects"] == OBJECTS
    report = S3Uri.parse(summary[PROVIDERS[0]]["report"])
    rows = s3.get_object(Bucket=report.bucket, Key=report.key)["Body"].read().decode()
    assert f"{BIG_KEY}," in rows and "multipart copy, 2 parts" in rows

    second = dag.test(run_conf=conf)
    assert second.state == "success"
    again = summary_of(s3, providers, second)
    for name, objects in EXPECTED.items():
        assert (again[name]["copied"], again[name]["failed"]) == (0, 0)
        assert again[name]["skipped_identical"] + again[name]["skipped"] == objects
    # the pre-filter leaves out what has the same size and ETag; the multipart copy's ETag differs, so the engine
    # compares that object itself and skips it
    assert (again[PROVIDERS[0]]["skipped_identical"], again[PROVIDERS[0]]["skipped"]) == (OBJECTS, 1)
    assert verify(s3, providers) == (sum(EXPECTED.values()), [])


def test_incremental_runs_select_objects_modified_in_their_data_interval(airflow_db, s3, providers):
    dag = load_dag("mxtransfer_aggregation")
    source = providers["providers"][1]["source_bucket"]
    key = s3.list_objects_v2(Bucket=source, Prefix="exports/")["Contents"][0]["Key"]
    modified = s3.head_object(Bucket=source, Key=key)["LastModified"].astimezone(timezone.utc)
    day_after = datetime(modified.year, modified.month, modified.day, tzinfo=timezone.utc) + timedelta(days=1)

    earlier = dag.test(**{LOGICAL_DATE: day_after - timedelta(days=10)}, run_conf=MULTIPART)  # 11 to 10 days before
    assert earlier.state == "success"
    assert {line["selected_objects"] for line in summary_of(s3, providers, earlier).values()} == {0}
    assert destination_keys(s3, providers) == []

    today = dag.test(**{LOGICAL_DATE: day_after}, run_conf=MULTIPART)  # interval: the day the objects were written
    assert today.state == "success"
    summary = summary_of(s3, providers, today)
    assert {name: line["copied"] for name, line in summary.items()} == EXPECTED
    modified_after = xcom(today, "transfer_provider.plan", key="modified_after", map_index=0)
    assert datetime.fromisoformat(modified_after) == day_after - timedelta(days=1)


def test_a_provider_that_cannot_be_listed_fails_alone_naming_its_bucket(airflow_db, s3, providers, tmp_path,
                                                                        monkeypatch):
    providers["providers"][1]["source_bucket"] = "no-such-provider-bucket"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(providers, allow_unicode=True))
    monkeypatch.setenv("MXTRANSFER_PROVIDERS_FILE", str(path))
    dag = load_dag("mxtransfer_aggregation")
    run = dag.test(run_conf={"full_listing": True, **MULTIPART})
    assert run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("transfer_provider.inventory", 1)] == "failed"  # at once: retrying cannot create the bucket
    assert states[("transfer_provider.wait", 0)] == states[("transfer_provider.wait", 2)] == "success"
    assert states[("summary", -1)] == "upstream_failed"
    checked, problems = verify(s3, {**providers, "providers": [providers["providers"][0], providers["providers"][2]]})
    assert (checked, problems) == (EXPECTED[PROVIDERS[0]] + EXPECTED[PROVIDERS[2]], [])
