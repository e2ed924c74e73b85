"""Pure parts of the provider: transfer ids, the worker command, provider metadata and console links."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mxtransfer_worker.cli import _parser, options_from_args
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB

import pytest

from airflow_provider_mxtransfer.backends.batch import MAX_ARRAY_SIZE, BatchBackend
from airflow_provider_mxtransfer.transfer import TransferPlan, shards_for, transfer_id_for


def test_transfer_id_is_deterministic_per_task_instance_and_a_valid_job_name():
    first = transfer_id_for("media.ingest", "manual__2026-01-01T00:00:00+00:00", "copy", -1)
    assert first == transfer_id_for("media.ingest", "manual__2026-01-01T00:00:00+00:00", "copy", -1)
    assert first != transfer_id_for("media.ingest", "manual__2026-01-01T00:00:00+00:00", "copy", 0)
    assert first.startswith("media-ingest-copy-") and len(first) <= 80
    assert all(char.isalnum() or char in "-_" for char in first)


def test_worker_command_round_trips_the_copy_options():
    options = CopyOptions(destination_bucket="dst-bucket", destination_prefix="in/", source_prefix="out/",
                          storage_class="GLACIER_IR", sse="aws:kms", sse_kms_key_id="alias/media", overwrite=True,
                          copy_tags=False, part_size=128 * MiB, object_concurrency=8)
    plan = TransferPlan("t-1", "s3://work-bucket/m.csv", options, 4, "s3://work-bucket/reports/t-1/")
    command = plan.worker_command()
    assert command[:2] == ["mxtransfer-worker", "copy"]
    args = _parser().parse_args(command[1:])
    assert options_from_args(args) == options
    assert (args.manifest, args.report, args.shard_count) == ("s3://work-bucket/m.csv", "s3://work-bucket/reports/t-1/", 4)


def test_shard_count_follows_bytes_and_rows_within_bounds():
    assert shards_for(0, 0, 100, 10, 50) == 1
    assert shards_for(1_000, 5, 100, 10, 50) == 10
    assert shards_for(10, 95, 100, 10, 50) == 10
    assert shards_for(10**9, 5, 100, 10, 50) == 50


def test_batch_backend_refuses_more_shards_than_an_array_job_holds_before_submitting(monkeypatch):
    backend = BatchBackend(job_queue="mxtransfer", job_definition="mxtransfer-worker")
    monkeypatch.setattr(type(backend.hook), "client", property(lambda hook: pytest.fail("no AWS call expected")))
    plan = TransferPlan("t-big", "s3://work-bucket/m.csv", CopyOptions(destination_bucket="dst-bucket"),
                        MAX_ARRAY_SIZE + 1, "s3://work-bucket/reports/t-big/")
    with pytest.raises(ValueError, match=r"t-big: 10,001 shards, but an AWS Batch array job has at most 10,000"):
        backend.submit(plan)


def test_airflow_lists_the_provider_with_its_triggers_and_links(tmp_path):
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    providers = subprocess.run([airflow, "providers", "list", "-o", "plain"], capture_output=True, text=True,
                               env=env, check=True).stdout
    assert "airflow-provider-mxtransfer" in providers
    links = subprocess.run([airflow, "providers", "links", "-o", "plain"], capture_output=True, text=True, env=env,
                           check=True).stdout
    for name in ("TransferBatchJobLink", "TransferLogsLink", "S3BatchOperationsJobLink", "TransferDestinationLink",
                 "TransferReportLink"):
        assert f"airflow_provider_mxtransfer.links.transfer.{name}" in links
    triggers = subprocess.run([airflow, "providers", "triggers", "-o", "plain"], capture_output=True, text=True,
                              env=env, check=True).stdout
    assert "airflow_provider_mxtransfer.triggers.fleet" in triggers


def test_provider_info_names_importable_modules_of_this_package():
    import importlib

    from airflow_provider_mxtransfer import get_provider_info

    info = get_provider_info()
    mine = ["operators.copy", "sensors.fleet", "hooks.s3copy", "triggers.fleet"]
    modules = [module for kind in ("operators", "sensors", "hooks", "triggers") for entry in info[kind]
               for module in entry["python-modules"]]
    for name in mine:
        assert f"airflow_provider_mxtransfer.{name}" in modules
        importlib.import_module(f"airflow_provider_mxtransfer.{name}")


def test_links_point_at_the_console_pages():
    from airflow_provider_mxtransfer.links.transfer import TransferDestinationLink, TransferLogsLink, TransferReportLink

    domain = {"region_name": "eu-west-1", "aws_domain": "aws.amazon.com"}
    assert TransferDestinationLink().format_link(**domain, bucket="dst", prefix="a b/") == (
        "https://console.aws.amazon.com/s3/buckets/dst?region=eu-west-1&prefix=a%20b%2F")
    assert TransferReportLink().format_link(**domain, bucket="work", object_key="reports/t 1/transfer.html") == (
        "https://console.aws.amazon.com/s3/object/work?region=eu-west-1&prefix=reports%2Ft%201%2Ftransfer.html")
    assert TransferLogsLink().format_link(**domain, log_group="/aws/batch/job") == (
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/%2Faws%2Fbatch%2Fjob")


def test_a_progress_line_gives_percentages_throughput_and_the_eta_at_the_pace_so_far():
    from airflow_provider_mxtransfer.backends import FleetStatus
    from airflow_provider_mxtransfer.monitor import progress_message

    transfer = {"transfer_id": "t1", "planned_objects": 1000, "planned_bytes": 40 * 2**30}
    totals = {"rows": 250, "succeeded": 200, "skipped": 40, "failed": 10, "bytes_copied": 8 * 2**30,
              "bytes_skipped": 2 * 2**30, "seconds": 90.0, "started_at": "2026-11-26T01:00:00+00:00"}
    started = 1795654800.0  # 2026-11-26T01:00:00Z
    running = FleetStatus("running", 4, succeeded=1, running=3)
    line = progress_message(transfer, running, totals, now=started + 120)
    assert "objects 250 of 1000 (25.0%) done: 200 copied, 40 already there, 10 failed" in line
    assert "10.00 GiB of 40.00 GiB (25.0%) done, 8.00 GiB copied at 68.3 MiB/s, 2.1 objects/s; ETA 6m00s" in line
    finished = progress_message(transfer, FleetStatus("succeeded", 4, succeeded=4), totals)
    assert finished.endswith("at 91.0 MiB/s, 2.8 objects/s")  # over the transfer's own wall time, no ETA
    reattached = progress_message({"transfer_id": "t1"}, running, totals, now=started + 120)
    assert "objects 250 done" in reattached and "ETA" not in reattached  # nothing planned to compare with
