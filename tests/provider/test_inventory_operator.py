"""GenerateInventoryOperator against moto's server: the manifest it writes, templated filters, XCom contents."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from datetime import datetime, timezone

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mxtransfer-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest  # noqa: E402
from airflow.exceptions import AirflowException, AirflowFailException  # noqa: E402

from airflow_provider_mxtransfer.operators.inventory import GenerateInventoryOperator  # noqa: E402
from mxtransfer_worker.manifest import encode_key, open_manifest  # noqa: E402


def operator(**kwargs):
    return GenerateInventoryOperator(task_id="inventory", aws_conn_id=None, **kwargs)


def put(s3, bucket, key, body=b"x"):
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def manifest_rows(s3, uri):
    return [(row.bucket, row.key, row.size) for row in open_manifest(s3, uri)]


def test_template_fields_follow_the_amazon_provider():
    fields = set(GenerateInventoryOperator.template_fields)
    assert {"aws_conn_id", "region_name", "verify", "manifest_uri", "sources", "modified_after",
            "modified_before", "include", "exclude", "skip_identical_at"} <= fields
    assert list(GenerateInventoryOperator.template_fields) == sorted(fields)


def test_writes_manifest_and_sizes_and_returns_counts_not_keys(s3, make_bucket):
    source, work = make_bucket("src"), make_bucket("work")
    for key, body in [("in/a b.mov", b"12345"), ("in/ünï,code.txt", b"12"), ("in/skip.tmp", b"1")]:
        put(s3, source, key, body)
    uri = f"s3://{work}/manifests/run 1/manifest.csv"
    result = operator(manifest_uri=uri, sources=f"s3://{source}/in/", exclude="*.tmp").execute({})
    assert result == {
        "manifest": uri, "sizes": uri + ".sizes", "objects": 2, "bytes": 7, "unknown_sizes": 0, "listed": 3,
        "filtered_out": 1, "skipped_identical": 0, "skipped_identical_bytes": 0,
    }
    assert "a b.mov" not in json.dumps(result)
    assert manifest_rows(s3, uri) == [(source, "in/a b.mov", 5), (source, "in/ünï,code.txt", 2)]
    sizes = s3.get_object(Bucket=work, Key="manifests/run 1/manifest.csv.sizes")["Body"].read().decode()
    etags = [s3.head_object(Bucket=source, Key=key)["ETag"].strip('"') for key in ("in/a b.mov", "in/ünï,code.txt")]
    assert sizes == f"5,{etags[0]}\n2,{etags[1]}\n"


def test_templated_data_interval_selects_objects_modified_in_it(s3, make_bucket):
    source, work = make_bucket("src"), make_bucket("work")
    put(s3, source, "daily/new.mov", b"new")
    modified = s3.head_object(Bucket=source, Key="daily/new.mov")["LastModified"]
    task = operator(
        manifest_uri=f"s3://{work}/{{{{ ds }}}}/manifest.csv",
        sources=["s3://{{ params.bucket }}/daily/"],
        modified_after="{{ data_interval_start }}",
        modified_before="{{ data_interval_end }}",
        min_size="{{ params.min_size }}",
    )
    day = datetime(modified.year, modified.month, modified.day, tzinfo=timezone.utc)
    context = {"ds": day.date().isoformat(), "params": {"bucket": source, "min_size": 2},
               "data_interval_start": day, "data_interval_end": day.replace(year=day.year + 1)}
    task.render_template_fields(context)
    assert task.manifest_uri == f"s3://{work}/{day.date().isoformat()}/manifest.csv"
    assert task.execute(context)["objects"] == 1

    context.update(data_interval_start=day.replace(year=day.year - 1), data_interval_end=day)
    earlier = operator(manifest_uri=f"s3://{work}/earlier.csv", sources=[f"s3://{source}/daily/"],
                       modified_after="{{ data_interval_start }}", modified_before="{{ data_interval_end }}")
    earlier.render_template_fields(context)
    assert earlier.execute(context)["objects"] == 0


def test_several_bucket_prefix_pairs(s3, make_bucket):
    first, second, work = make_bucket("one"), make_bucket("two"), make_bucket("work")
    put(s3, first, "x/1")
    put(s3, first, "y/2")
    put(s3, second, "3")
    uri = f"s3://{work}/m.csv"
    result = operator(manifest_uri=uri, sources=[f"s3://{first}/x/", f"s3://{second}/"]).execute({})
    assert result["objects"] == 2
    assert manifest_rows(s3, uri) == [(first, "x/1", 1), (second, "3", 1)]


def test_empty_source_writes_an_empty_manifest_and_says_so(s3, make_bucket, caplog, capsys):
    source, work = make_bucket("src"), make_bucket("work")
    uri = f"s3://{work}/empty.csv"
    result = operator(manifest_uri=uri, sources=[f"s3://{source}/nothing/"]).execute({})
    assert (result["objects"], result["bytes"], result["sizes"]) == (0, 0, uri + ".sizes")
    assert s3.get_object(Bucket=work, Key="empty.csv")["Body"].read() == b""
    logged = caplog.text + capsys.readouterr().out  # Airflow 3's structlog writes to stdout
    assert f"nothing to transfer from s3://{source}/nothing/" in logged


def test_fail_on_empty(s3, make_bucket):
    source, work = make_bucket("src"), make_bucket("work")
    put(s3, source, "only.tmp")
    task = operator(manifest_uri=f"s3://{work}/m.csv", sources=[f"s3://{source}/"], exclude=["*.tmp"],
                    fail_on_empty=True)
    with pytest.raises(AirflowException, match=r"nothing to transfer .*: listed 1 objects, 1 left out by the filters.*fail_on_empty"):
        task.execute({})


def test_leaves_out_objects_identical_at_the_destination(s3, make_bucket):
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    put(s3, source, "media/same.mov", b"same")
    put(s3, source, "media/changed.mov", b"new!")
    put(s3, source, "media/new.mov", b"n")
    put(s3, destination, "providers/acme/same.mov", b"same")
    put(s3, destination, "providers/acme/changed.mov", b"old!")
    uri = f"s3://{work}/m.csv"
    result = operator(manifest_uri=uri, sources=[f"s3://{source}/media/"], source_prefix="media/",
                      skip_identical_at=f"s3://{destination}/providers/acme/").execute({})
    assert (result["objects"], result["skipped_identical"], result["skipped_identical_bytes"]) == (2, 1, 4)
    assert [key for _, key, _ in manifest_rows(s3, uri)] == ["media/changed.mov", "media/new.mov"]


def test_reads_an_s3_inventory_report(s3, make_bucket):
    work = make_bucket("work")
    data = "".join(f'"media","{encode_key(key)}","{size}"\n' for key, size in [("a/x y.mov", 10), ("b/z.mov", 20)])
    s3.put_object(Bucket=work, Key="inv/1.csv.gz", Body=gzip.compress(data.encode()))
    s3.put_object(Bucket=work, Key="inv/manifest.json", Body=json.dumps({
        "sourceBucket": "media", "destinationBucket": f"arn:aws:s3:::{work}", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/1.csv.gz"}]}).encode())
    uri = f"s3://{work}/m.csv"
    result = operator(manifest_uri=uri, inventory_manifest=f"s3://{work}/inv/manifest.json",
                      sources=["s3://media/a/"]).execute({})
    assert (result["objects"], result["bytes"], result["listed"], result["filtered_out"]) == (1, 10, 2, 1)
    assert manifest_rows(s3, uri) == [("media", "a/x y.mov", 10)]


def test_missing_source_bucket_fails_naming_it(s3, make_bucket):
    work = make_bucket("work")
    task = operator(manifest_uri=f"s3://{work}/m.csv", sources=["s3://no-such-provider-bucket/x/"])
    with pytest.raises(AirflowFailException, match="bucket 'no-such-provider-bucket' does not exist"):
        task.execute({})
    assert "Contents" not in s3.list_objects_v2(Bucket=work)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give sources"),
        ({"sources": ["s3://b-b-b/"], "modified_after": "yesterday"}, "modified_after is not an ISO 8601"),
        ({"sources": ["s3://b-b-b/"], "max_size": "big"}, "max_size must be a whole number"),
        ({"sources": ["b-b-b/prefix"]}, "not an s3:// URI"),
        ({"inventory_manifest": "s3://b-b-b/manifest.json", "skip_identical_at": "s3://d-d-d/"}, "inventory_manifest"),
    ],
)
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        operator(manifest_uri="s3://w-w-w/m.csv", **kwargs).execute({})
