"""S3BatchCopyOperator and BatchFleetSensor on moto's S3 and Batch (simple mode): real task instances through
``dag.test()``, the trigger run in an event loop, reattach on retry, failures named in the sensor's error."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from provider_helpers import run_submitted_workers, set_job_status

from airflow_provider_mxtransfer.monitor import progress_message
from airflow_provider_mxtransfer.transfer import transfer_id_for
from mxtransfer_worker.manifest import ManifestRow, upload_manifest

pytestmark = pytest.mark.usefixtures("airflow_db", "aws_connection")


class FakeTI:
    """Just what the operator, the sensor and the links use of a task instance."""

    def __init__(self, task_id: str, run_id: str = "manual__retry", try_number: int = 1):
        self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number = "unit", run_id, task_id, -1, try_number
        self.xcoms = {}

    def xcom_push(self, key, value):
        self.xcoms[key] = value


@pytest.fixture
def transfer_setup(s3, make_bucket):
    """A source of 12 objects under ``media/``, a manifest of them (plus, on request, a missing key), and buckets
    for the destination and the reports."""
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    keys = [f"media/clip {i:02d}.mov" for i in range(12)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=source, Key=key, Body=b"x" * (100 + i))

    def make(missing: bool = False, shard_count: int | None = 3) -> dict:
        rows = [ManifestRow(source, key, size=100 + i) for i, key in enumerate(keys)]
        if missing:
            rows.append(ManifestRow(source, "media/gone.mov", size=5))
        manifest = f"s3://{work}/manifests/{'bad' if missing else 'good'}.csv"
        upload_manifest(s3, rows, manifest)
        return {"manifest_uri": manifest, "destination": f"s3://{destination}/copied/",
                "report_root": f"s3://{work}/reports/", "source_prefix": "media/", "shard_count": shard_count,
                "source": source, "destination_bucket": destination, "work": work, "keys": keys}

    return make


def _dag(dag_id: str):
    """A DAG of ``dags/mxtransfer_test_dags.py`` (the DAGS_FOLDER, which ``dag.test()`` syncs to the database)."""
    import mxtransfer_test_dags

    return {dag.dag_id: dag for dag in vars(mxtransfer_test_dags).values()
            if isinstance(dag, mxtransfer_test_dags.DAG)}[dag_id]


def _submitted(batch_queue: dict, transfer_id: str) -> list[str]:
    """The ids of the jobs (not array children, which moto lists too) submitted for a transfer."""
    jobs = batch_queue["client"].list_jobs(jobQueue=batch_queue["job_queue"], filters=[
        {"name": "JOB_NAME", "values": [f"mxtransfer-{transfer_id}"]}])["jobSummaryList"]
    return [job["jobId"] for job in jobs if ":" not in job["jobId"]]


def _conf(setup: dict, batch_queue: dict) -> dict:
    return {name: setup[name] for name in ("manifest_uri", "destination", "report_root", "source_prefix",
                                           "shard_count")} | {"job_queue": batch_queue["job_queue"],
                                                              "job_definition": batch_queue["job_definition"]}


def _read_json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.parametrize("dag_id", ["mxt_batch_poke", "mxt_batch_deferred"])
def test_batch_transfer_runs_as_one_array_job_and_the_sensor_merges_the_report(dag_id, s3, transfer_setup,
                                                                                batch_queue):
    setup = transfer_setup()
    run = _dag(dag_id).test(run_conf=_conf(setup, batch_queue))
    assert run.state == "success"

    transfer_id = transfer_id_for(dag_id, run.run_id, "copy")
    batch = batch_queue["client"]
    job_ids = _submitted(batch_queue, transfer_id)
    assert len(job_ids) == 1
    job = batch.describe_jobs(jobs=job_ids)["jobs"][0]
    report_uri = f"s3://{setup['work']}/reports/{transfer_id}/"
    assert job["arrayProperties"]["size"] == 3
    assert job["parameters"] == {"transferId": transfer_id, "manifest": setup["manifest_uri"],
                                 "destination": setup["destination"], "report": report_uri, "shardCount": "3"}
    assert job["tags"] == {"mxtransfer:transfer-id": transfer_id, "airflow:dag-id": dag_id,
                           "airflow:run-id": run.run_id, "airflow:task-id": "copy"}
    assert job["container"]["command"][:2] == ["mxtransfer-worker", "copy"]
    assert {"name": "MXTRANSFER_TRANSFER_ID", "value": transfer_id} in job["container"]["environment"]

    for i, key in enumerate(setup["keys"]):
        copied = s3.get_object(Bucket=setup["destination_bucket"], Key="copied/" + key[len("media/"):])
        assert copied["ContentLength"] == 100 + i
    totals = _read_json(s3, setup["work"], f"reports/{transfer_id}/transfer.json")
    assert (totals["rows"], totals["succeeded"], totals["failed"], totals["shards_reported"]) == (12, 12, 0, 3)
    merged = s3.get_object(Bucket=setup["work"], Key=f"reports/{transfer_id}/transfer.csv")["Body"].read().decode()
    assert merged.count("\n") == 13 and merged.startswith("line,bucket,key")


def test_local_transfer_copies_in_process_and_plans_its_shards(s3, transfer_setup):
    setup = transfer_setup(shard_count=None)
    conf = {name: setup[name] for name in ("manifest_uri", "destination", "report_root", "source_prefix",
                                           "shard_count")}
    run = _dag("mxt_local").test(run_conf=conf)
    assert run.state == "success"
    transfer_id = transfer_id_for("mxt_local", run.run_id, "copy")
    totals = _read_json(s3, setup["work"], f"reports/{transfer_id}/transfer.json")
    assert (totals["rows"], totals["succeeded"], totals["shard_count"]) == (12, 12, 1)


def test_retry_failed_copies_just_the_rows_that_failed(s3, transfer_setup):
    setup = transfer_setup(missing=True, shard_count=2)
    conf = {name: setup[name] for name in ("manifest_uri", "destination", "report_root", "source_prefix",
                                           "shard_count")}
    first = _dag("mxt_local").test(run_conf=conf)
    assert first.state == "failed"
    first_report = f"s3://{setup['work']}/reports/{transfer_id_for('mxt_local', first.run_id, 'copy')}/"
    s3.put_object(Bucket=setup["source"], Key="media/gone.mov", Body=b"found")  # the cause fixed

    retry = _dag("mxt_local_retry").test(run_conf={**conf, "retry_failed": first_report + "transfer.csv"})
    assert retry.state == "success"
    transfer_id = transfer_id_for("mxt_local_retry", retry.run_id, "copy")
    totals = _read_json(s3, setup["work"], f"reports/{transfer_id}/transfer.json")
    assert (totals["rows"], totals["succeeded"], totals["failed"]) == (1, 1, 0)
    merged = s3.get_object(Bucket=setup["work"], Key=f"reports/{transfer_id}/transfer.csv")["Body"].read().decode()
    assert ",media/gone.mov," in merged and "clip" not in merged
    assert s3.get_object(Bucket=setup["destination_bucket"], Key="copied/gone.mov")["Body"].read() == b"found"

    again = _dag("mxt_local_retry").test(run_conf={**conf, "retry_failed": f"s3://{setup['work']}/reports/{transfer_id}/"})
    assert {ti.task_id: ti.state for ti in again.get_task_instances()} == {"copy": "skipped", "wait": "skipped"}


def _copy_operator(setup: dict, batch_queue: dict, **kwargs):
    from airflow_provider_mxtransfer.operators.copy import S3BatchCopyOperator

    return S3BatchCopyOperator(task_id="copy", manifest_uri=setup["manifest_uri"], destination=setup["destination"],
                               report_root=setup["report_root"], shard_count=setup["shard_count"],
                               copy_options={"source_prefix": "media/", "copy_annotations": False},
                               job_queue=batch_queue["job_queue"], job_definition=batch_queue["job_definition"],
                               **kwargs)


def _status_reason(batch_queue: dict, transfer: dict) -> str | None:
    """The job's status reason: moto's simple mode records a terminate_job's reason and changes no state."""
    return batch_queue["client"].describe_jobs(jobs=transfer["job_ids"])["jobs"][0].get("statusReason")


def test_a_retry_reattaches_to_the_job_in_flight_and_on_kill_leaves_it_running(transfer_setup, batch_queue):
    setup = transfer_setup()
    operator = _copy_operator(setup, batch_queue)
    first = operator.execute({"ti": FakeTI("copy", run_id="manual__reattach")})
    set_job_status(first["job_ids"][0], "RUNNING")

    retry = _copy_operator(setup, batch_queue)
    second = retry.execute({"ti": FakeTI("copy", run_id="manual__reattach", try_number=2)})
    assert second == first
    assert _submitted(batch_queue, first["transfer_id"]) == first["job_ids"]

    retry.on_kill()  # a Clear kills the try that reattached: the fleet goes on for the next try
    assert _status_reason(batch_queue, first) != "Airflow task killed"
    stopping = _copy_operator(setup, batch_queue, terminate_on_kill=True)
    stopping.execute({"ti": FakeTI("copy", run_id="manual__reattach", try_number=3)})
    stopping.on_kill()
    assert _status_reason(batch_queue, first) == "Airflow task killed"


def _failed_transfer(setup: dict, batch_queue: dict, run_id: str) -> dict:
    transfer = _copy_operator(setup, batch_queue).execute({"ti": FakeTI("copy", run_id=run_id)})
    codes = run_submitted_workers(batch_queue["client"], transfer["job_ids"][0])
    assert sorted(codes.values()) == [0, 0, 1]
    return transfer


def test_a_failed_shard_fails_the_poking_sensor_with_its_error(transfer_setup, batch_queue):
    from airflow_provider_mxtransfer.compat import AirflowException
    from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor

    setup = transfer_setup(missing=True)
    transfer = _failed_transfer(setup, batch_queue, "manual__failpoke")
    sensor = BatchFleetSensor(task_id="wait", transfer=transfer)
    ti = FakeTI("wait", run_id="manual__failpoke")
    with pytest.raises(AirflowException) as failure:
        sensor.poke({"ti": ti})
    message = str(failure.value)
    assert f"transfer {transfer['transfer_id']} failed: 1 of 3 shards failed" in message
    assert "media/gone.mov" in message and "NoSuchKey" in message
    assert "cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/%2Faws%2Fbatch%2Fjob/log-events/" in message
    assert ti.xcoms["mxtransfer_batch_job"]["job_id"] == transfer["job_ids"][0]


def test_the_trigger_reports_the_finished_fleet_and_the_sensor_fails_on_its_event(transfer_setup, batch_queue):
    try:
        from airflow.providers.common.compat.sdk import TaskDeferred
    except ImportError:  # common-compat 1.9 (Airflow 2.10) lacks it; Airflow 3 deprecates airflow.exceptions'
        from airflow.exceptions import TaskDeferred

    from airflow_provider_mxtransfer.compat import AirflowException
    from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor
    from airflow_provider_mxtransfer.triggers.fleet import BatchFleetTrigger

    setup = transfer_setup(missing=True)
    transfer = _copy_operator(setup, batch_queue).execute({"ti": FakeTI("copy", run_id="manual__failtrigger")})
    set_job_status(transfer["job_ids"][0], "RUNNING")
    sensor = BatchFleetSensor(task_id="wait", transfer=transfer, deferrable=True, poll_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": FakeTI("wait", run_id="manual__failtrigger")})
    classpath, kwargs = deferred.value.trigger.serialize()
    trigger = BatchFleetTrigger(**json.loads(json.dumps(kwargs)))
    assert classpath == "airflow_provider_mxtransfer.triggers.fleet.BatchFleetTrigger"

    async def run_until_first_event():
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the parent job is still running
        set_job_status(transfer["job_ids"][0], "SUCCEEDED")
        run_submitted_workers(batch_queue["client"], transfer["job_ids"][0])
        return (await waiting).payload

    event = asyncio.run(run_until_first_event())
    assert event["status"] == "success" and event["fleet"]["state"] == "failed"
    assert event["fleet"]["failed"] == 1 and len(event["fleet"]["failed_shards"]) == 1
    with pytest.raises(AirflowException, match="media/gone.mov"):
        sensor.execute_complete({"ti": FakeTI("wait", run_id="manual__failtrigger")}, event)


def test_killing_the_deferred_task_terminates_the_jobs_only_with_terminate_on_kill(transfer_setup, batch_queue):
    from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor
    from airflow_provider_mxtransfer.triggers.fleet import BatchFleetTrigger

    setup = transfer_setup()
    transfer = _copy_operator(setup, batch_queue).execute({"ti": FakeTI("copy", run_id="manual__kill")})
    set_job_status(transfer["job_ids"][0], "RUNNING")
    for terminate_on_kill, reason in [(False, None), (True, "Airflow task killed")]:
        sensor = BatchFleetSensor(task_id="wait", transfer=transfer, terminate_on_kill=terminate_on_kill)
        trigger = BatchFleetTrigger(**BatchFleetTrigger.for_task(sensor, transfer).serialize()[1])
        asyncio.run(trigger.on_kill())
        assert _status_reason(batch_queue, transfer) == reason


def test_the_trigger_logs_progress_at_each_poll_with_percentages_throughput_and_eta(transfer_setup, batch_queue,
                                                                                     monkeypatch):
    from airflow_provider_mxtransfer.triggers import fleet

    lines = []  # every line the trigger logs, recorded where it is made (Airflow 3 logs triggers via structlog)
    monkeypatch.setattr(fleet, "progress_message", lambda *args: lines.append(progress_message(*args)) or lines[-1])
    setup = transfer_setup()
    transfer = _copy_operator(setup, batch_queue).execute({"ti": FakeTI("copy", run_id="manual__progress")})
    assert (transfer["planned_objects"], transfer["planned_bytes"]) == (12, sum(100 + i for i in range(12)))
    job_id = transfer["job_ids"][0]
    set_job_status(job_id, "RUNNING")
    trigger = fleet.BatchFleetTrigger(transfer=transfer, poll_interval=0.05)

    async def logged(text: str) -> None:
        """Wait (at most 2 minutes) until the trigger has logged a line containing ``text``."""
        for _ in range(2400):
            if any(text in line for line in lines):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no progress line with {text!r} in {lines}")

    async def run_shard_by_shard():
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await logged(": running; ")
        for index, percent in enumerate(("33.3", "66.7", "100.0")):  # each shard's worker ends while it polls
            run_submitted_workers(batch_queue["client"], job_id, [index])  # in this thread: signal handlers
            await logged(f"of 12 ({percent}%) done")
        set_job_status(job_id, "SUCCEEDED")
        return (await waiting).payload

    event = asyncio.run(run_shard_by_shard())
    assert event["fleet"]["state"] == "succeeded"
    assert "objects" not in lines[0]  # nothing done yet
    percents = [float(match.group(1)) for line in lines if (match := re.search(r"of 12 \(([\d.]+)%\) done", line))]
    assert percents == sorted(percents) and {33.3, 66.7, 100.0} <= set(percents)
    running = [line for line in lines if ": running; " in line and "%) done" in line]
    assert running and all(re.search(r"B of 1.24 KiB \([\d.]+%\) done, .+ copied at [\d.]+ MiB/s, [\d.]+ objects/s; "
                                     r"ETA \d", line) for line in running), running
    assert "ETA" not in lines[-1] and "objects 12 of 12 (100.0%) done: 12 copied" in lines[-1]
