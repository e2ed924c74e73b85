"""A running shard writes its summary so far at a steady rhythm (``shard.PROGRESS_SECONDS``), so the sensor's
progress lines see its counts before it ends; the final summary replaces it."""

from __future__ import annotations

import json

from mxtransfer_worker import shard
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.report import ShardReports, report_totals


def test_a_running_shard_publishes_its_summary_so_far(s3, make_bucket, monkeypatch):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    for index in range(5):
        s3.put_object(Bucket=source, Key=f"a/{index}.mov", Body=b"x" * (10 + index))
    manifest, report_uri = f"s3://{work}/m.csv", f"s3://{work}/reports/t/"
    upload_manifest(s3, [ManifestRow(source, f"a/{index}.mov") for index in range(5)], manifest)
    published, seen_by_progress = [], []
    put_object = s3.put_object

    def recording_put_object(**kwargs):
        answer = put_object(**kwargs)
        if "/shard-" in kwargs["Key"] and kwargs["Key"].endswith(".json"):
            published.append(json.loads(kwargs["Body"]))
            seen_by_progress.append(report_totals(s3, [ShardReports(report_uri, 1)])["rows"])
        return answer

    monkeypatch.setattr(s3, "put_object", recording_put_object)
    monkeypatch.setattr(shard, "PROGRESS_SECONDS", 0)  # a summary after every row
    summary = shard.run_shard(s3, manifest, CopyOptions(destination_bucket=destination, object_concurrency=1),
                              report_uri)
    assert summary["succeeded"] == 5
    assert [(each["rows"], each.get("in_progress")) for each in published] == [
        (1, True), (2, True), (3, True), (4, True), (5, True), (5, None)]
    assert seen_by_progress == [1, 2, 3, 4, 5, 5]  # what the sensor's progress lines read meanwhile
