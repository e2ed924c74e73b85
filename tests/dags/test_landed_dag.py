"""The asset-scheduled example DAG: a transfer run emits one asset event per provider's destination prefix with
its summary; the scheduler's own logic turns the queued events into an asset-triggered run of
``mxtransfer_landed``, which then runs with those events (``dag.test()`` on that run)."""

from __future__ import annotations

from dag_testlib import (
    EXPECTED,
    MULTIPART,
    asset_events,
    dag_test_on,
    load_dag,
    queued_asset_runs,
    scheduler_creates_runs,
    sync_dags,
    unpause_only,
    xcom,
)

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
from airflow.utils.types import DagRunType

from airflow_provider_mxtransfer.assets import destination_asset
from mxtransfer_worker.s3uri import S3Uri


ASSET_TRIGGERED = DagRunType.ASSET_TRIGGERED if AIRFLOW_V_3_0_PLUS else DagRunType.DATASET_TRIGGERED


def test_a_transfer_run_triggers_the_landed_dag_with_each_providers_summary(airflow_db, s3, providers, monkeypatch):
    # the landed DAG's assets are this test's buckets: write its serialized form now, even if an earlier test
    # wrote the DAG less than [core] min_serialized_dag_update_interval (30 s) ago
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    sync_dags()
    unpause_only("mxtransfer_landed")
    assert queued_asset_runs("mxtransfer_landed") == 0

    transfer_run = load_dag("mxtransfer_aggregation").test(run_conf={"full_listing": True, **MULTIPART})
    assert transfer_run.state == "success"
    bucket = providers["destination"]["bucket"]
    destinations = {entry["name"]: f"s3://{bucket}/{entry['destination_prefix']}" for entry in providers["providers"]}
    events = asset_events(transfer_run)
    assert sorted(uri for uri, _ in events) == sorted(destination_asset(uri).uri for uri in destinations.values())
    for name, destination in destinations.items():
        extra = next(extra for uri, extra in events if uri == destination_asset(destination).uri)
        totals = xcom(transfer_run, "transfer_provider.wait", map_index=list(destinations).index(name))
        assert extra["destination"] == destination
        assert (extra["rows"], extra["succeeded"], extra["failed"]) == (EXPECTED[name], EXPECTED[name], 0)
        assert (extra["bytes_copied"], extra["report_csv"]) == (totals["bytes_copied"], totals["report_csv"])
        assert not any("key" in field for field in extra)  # a summary, never a list of keys
    assert queued_asset_runs("mxtransfer_landed") == len(destinations)

    created = scheduler_creates_runs()
    assert [(run.dag_id, run.run_type) for run in created] == [("mxtransfer_landed", ASSET_TRIGGERED)]
    assert queued_asset_runs("mxtransfer_landed") == 0  # the run consumed the queued events

    landed_run = dag_test_on(load_dag("mxtransfer_landed"), created[0])
    assert (landed_run.run_id, landed_run.state) == (created[0].run_id, "success")
    lines = {line["provider"]: line for line in xcom(landed_run, "landed")}
    assert set(lines) == set(destinations)
    for name, line in lines.items():
        assert (line["destination"], line["succeeded"]) == (destinations[name], EXPECTED[name])
        report = S3Uri.parse(line["report_csv"])
        rows = s3.get_object(Bucket=report.bucket, Key=report.key)["Body"].read().decode().splitlines()
        assert len(rows) - 1 == line["rows"]  # the event's counts are the report's
