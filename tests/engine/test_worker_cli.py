"""The worker command line end to end against moto's server: shards, reports, re-runs and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from mxtransfer_worker.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_ROWS_FAILED, main
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker import runner
from mxtransfer_worker.runner import SENT_COPIES, client_connections, copy_client_for
from mxtransfer_worker.s3client import MULTIPART_THRESHOLD, upload

ODD = ["a b+c%d#e?f", "ünï/cødé/🎞.mov", "quote\"comma,.txt"]


def read_report(s3, bucket: str, prefix: str, shard_count: int) -> tuple[list[dict], list[dict]]:
    rows, summaries = [], []
    for index in range(shard_count):
        stem = f"{prefix}shard-{index:05d}-of-{shard_count:05d}"
        body = s3.get_object(Bucket=bucket, Key=f"{stem}.csv")["Body"].read().decode()
        rows.extend(csv.DictReader(io.StringIO(body, newline="")))
        summaries.append(json.loads(s3.get_object(Bucket=bucket, Key=f"{stem}.json")["Body"].read()))
    return rows, summaries


def run_worker(manifest_uri, destination, report, shard_count, *extra) -> list[int]:
    return [main(["copy", "--manifest", manifest_uri, "--destination", destination, "--report", report,
                  "--shard-index", str(index), "--shard-count", str(shard_count), "--no-copy-annotations",
                  "--object-concurrency", "16", *extra])
            for index in range(shard_count)]


def test_mixed_manifest_of_1000_objects_is_fully_accounted_for_and_rerun_skips(s3, make_bucket, caplog):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    keys = [f"assets/{i:04d}/{ODD[i % 3] if i % 50 == 0 else 'file'}-{i}.bin" for i in range(996)]
    sizes = {key: (i * 37) % 4096 for i, key in enumerate(keys)}
    sizes[keys[1]] = 0
    big = ["assets/big/master-a.mxf", "assets/big/master-b.mxf"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=source, Key=key, Body=os.urandom(sizes[key])), keys))
        list(pool.map(lambda key: s3.put_object(Bucket=source, Key=key, Body=os.urandom(6 * MiB)), big))
    rows = ([ManifestRow(source, key, size=sizes[key]) for key in keys]
            + [ManifestRow(source, key, size=6 * MiB) for key in big]
            + [ManifestRow(source, "assets/missing.bin", size=10), ManifestRow("no-such-bucket-mxt", "assets/x", size=1)])
    manifest_uri = f"s3://{work}/manifests/m.csv"
    stats = upload_manifest(s3, rows, manifest_uri)
    assert stats.rows == 1000

    size_flags = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    codes = run_worker(manifest_uri, f"s3://{destination}/agg/", f"s3://{work}/report/run1/", 2,
                       "--source-prefix", "assets/", *size_flags)
    report, summaries = read_report(s3, work, "report/run1/", 2)
    assert codes == [EXIT_ROWS_FAILED if summary["failed"] else EXIT_OK for summary in summaries]
    assert sorted(int(row["line"]) for row in report) == list(range(1, 1001))
    by_key = {row["key"]: row for row in report}
    assert {row["status"] for key, row in by_key.items() if key not in ("assets/missing.bin", "assets/x")} == {"succeeded"}
    assert by_key["assets/missing.bin"]["error_code"] == "NoSuchKey"
    assert by_key["assets/x"]["error_code"] == "NoSuchBucket"
    assert "multipart copy, 2 parts" in by_key[big[0]]["message"]
    assert sum(s["succeeded"] for s in summaries) == 998 and sum(s["failed"] for s in summaries) == 2
    assert sum(s["bytes_copied"] for s in summaries) == sum(sizes.values()) + 2 * 6 * MiB
    for key in keys[:60] + big:
        head = s3.head_object(Bucket=destination, Key="agg/" + key[len("assets/"):])
        assert head["ContentLength"] == (6 * MiB if key in big else sizes[key])

    codes = run_worker(manifest_uri, f"s3://{destination}/agg/", f"s3://{work}/report/run2/", 2,
                       "--source-prefix", "assets/", *size_flags)
    report, summaries = read_report(s3, work, "report/run2/", 2)
    assert sum(s["skipped"] for s in summaries) == 998
    assert sum(s["succeeded"] for s in summaries) == 0 and sum(s["failed"] for s in summaries) == 2
    # the botocore client's pool (client_connections) holds every connection the object threads open at once
    assert [record for record in caplog.records if "Connection pool is full" in record.getMessage()] == []


def test_clean_run_exits_zero_and_bad_manifest_exits_two(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    s3.put_object(Bucket=source, Key="one.txt", Body=b"1")
    upload_manifest(s3, [ManifestRow(source, "one.txt")], f"s3://{work}/ok.csv")
    assert run_worker(f"s3://{work}/ok.csv", f"s3://{destination}/", f"s3://{work}/r/", 1) == [EXIT_OK]

    s3.put_object(Bucket=work, Key="bad.csv", Body=b"only-one-column\n")
    assert run_worker(f"s3://{work}/bad.csv", f"s3://{destination}/", f"s3://{work}/r2/", 1) == [EXIT_BAD_INPUT]
    assert run_worker(f"s3://{work}/absent.csv", f"s3://{destination}/", f"s3://{work}/r3/", 1) == [EXIT_BAD_INPUT]


def test_the_botocore_client_pools_connections_for_what_it_sends():
    native = CopyOptions(destination_bucket="d", object_concurrency=16, part_concurrency=1000)
    assert client_connections(native) == 16 + 4  # the part copies go through awscrt's client
    assert client_connections(replace(native, native_client=False)) == native.connections == 16 + 1000 + 4


def test_shard_index_defaults_to_the_batch_array_index(monkeypatch):
    from mxtransfer_worker.cli import _parser

    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "3")
    args = _parser().parse_args(["copy", "--manifest", "s3://b/m", "--destination", "s3://d/", "--report",
                                 "s3://r/", "--shard-count", "4"])
    assert (args.shard_index, args.shard_count) == (3, 4)


def test_the_copy_path_imports_neither_boto3_nor_s3transfer():
    """They cost every worker ~0.03 s of start-up: the client is botocore's, and s3transfer is imported only for
    an upload in parts (``s3client.upload``) or refreshable credentials (``native_s3``)."""
    script = ("import sys, mxtransfer_worker.cli as cli; cli.make_s3_client(); "
              "print(sorted({name.split('.')[0] for name in sys.modules} & {'boto3', 's3transfer'}))")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                                    "AWS_DEFAULT_REGION": "us-east-1"})
    assert completed.stdout.strip() == "[]", completed.stderr


@pytest.mark.parametrize("size", [3, MULTIPART_THRESHOLD + 1])
def test_upload_sends_a_small_file_whole_and_a_large_one_in_parts(s3, make_bucket, size):
    bucket = make_bucket("up")
    data = os.urandom(size)
    with tempfile.TemporaryFile() as file:
        file.write(data)  # left at its end: upload starts from the beginning
        upload(s3, file, bucket, "k", ContentType="text/csv")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["ContentType"]) == (data, "text/csv")
    assert got["ETag"].endswith('-2"') == (size > MULTIPART_THRESHOLD)  # 8 MiB and 1 byte: two parts


def test_the_native_client_has_a_connection_for_every_request_copy_rows_may_have_in_flight(monkeypatch):
    made = []
    monkeypatch.setattr(runner, "CrtCopyClient", lambda client, connections: made.append(connections) or "native")
    options = CopyOptions(destination_bucket="d", object_concurrency=16, part_concurrency=1000)
    assert copy_client_for("botocore client", options) == "native"
    assert made == [16 + 1000 + 4 + SENT_COPIES]  # rows, parts, reports and checkpoints, long copies sent
    assert copy_client_for("botocore client", replace(options, native_client=False)) is None
