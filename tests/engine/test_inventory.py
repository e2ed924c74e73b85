"""Reading S3 Inventory reports (manifest.json + gzipped CSV files) built in the test on moto's server."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json

import pytest

from mxtransfer_worker.manifest import ManifestError, encode_key, read_inventory

FULL_SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"


def _gzipped_csv(records: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(records)  # Inventory quotes every field
    return gzip.compress(text.getvalue().encode("utf-8"))


def _publish(s3, destination: str, source: str, parts: list[bytes], **overrides) -> str:
    """Upload data files and a manifest.json laid out as S3 Inventory publishes them; returns its URI."""
    prefix = f"inventory/{source}/daily/2026-11-25T01-00Z"
    files = []
    for index, body in enumerate(parts):
        key = f"inventory/{source}/daily/data/part-{index}.csv.gz"
        s3.put_object(Bucket=destination, Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})
    report = {
        "sourceBucket": source,
        "destinationBucket": f"arn:aws:s3:::{destination}",
        "version": "2016-11-30",
        "creationTimestamp": "1764032400000",
        "fileFormat": "CSV",
        "fileSchema": FULL_SCHEMA,
        "files": files,
    }
    report.update(overrides)
    s3.put_object(Bucket=destination, Key=f"{prefix}/manifest.json", Body=json.dumps(report).encode())
    return f"s3://{destination}/{prefix}/manifest.json"


def test_reads_versioned_report_across_parts_skipping_delete_markers(s3, make_bucket):
    source, destination = make_bucket("src", versioned=True), make_bucket("inv")
    odd_key = "clips/scène 1+2 #final?.mov"
    old = s3.put_object(Bucket=source, Key=odd_key, Body=b"first take")["VersionId"]
    new = s3.put_object(Bucket=source, Key=odd_key, Body=b"second take!")["VersionId"]
    plain = s3.put_object(Bucket=source, Key="a.txt", Body=b"a")["VersionId"]
    s3.put_object(Bucket=source, Key="gone.txt", Body=b"gone")
    marker = s3.delete_object(Bucket=source, Key="gone.txt")["VersionId"]
    date = "2026-11-24T10:00:00.000Z"
    part_one = _gzipped_csv([
        [source, "a.txt", plain, "true", "false", "1", date, "etag-a"],
        [source, encode_key(odd_key), new, "true", "false", "12", date, "etag-new"],
    ])
    part_two = _gzipped_csv([
        [source, encode_key(odd_key), old, "false", "false", "10", date, "etag-old"],
        [source, "gone.txt", marker, "true", "true", "", date, ""],
    ])
    uri = _publish(s3, destination, source, [part_one, part_two])

    rows = list(read_inventory(s3, uri))

    assert [(r.bucket, r.key, r.version_id, r.size, r.line) for r in rows] == [
        (source, "a.txt", plain, 1, 1),
        (source, odd_key, new, 12, 2),
        (source, odd_key, old, 10, 1),
    ]
    for row in rows:  # every row names a real object version of that size
        head = s3.head_object(Bucket=row.bucket, Key=row.key, VersionId=row.version_id)
        assert head["ContentLength"] == row.size


def test_reads_current_version_report_without_version_or_size_columns(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("inv")
    body = "\n".join(f'"{source}","{encode_key(key)}","2026-11-24T10:00:00.000Z"' for key in ("x y", "z+")) + "\n"
    uri = _publish(
        s3, destination, source, [gzip.compress(body.encode())], fileSchema="Bucket, Key, LastModifiedDate"
    )

    rows = list(read_inventory(s3, uri))

    assert [(r.key, r.version_id, r.size) for r in rows] == [("x y", None, None), ("z+", None, None)]


def test_empty_version_id_means_none(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("inv")
    part = _gzipped_csv([[source, "k", "", "true", "false", "5", "2026-11-24T10:00:00.000Z", "e"]])
    [row] = read_inventory(s3, _publish(s3, destination, source, [part]))
    assert (row.key, row.version_id, row.size) == ("k", None, 5)


@pytest.mark.parametrize(
    ("overrides", "cause"),
    [
        ({"fileFormat": "ORC"}, "fileFormat is 'ORC': only CSV inventory reports can be read"),
        ({"fileFormat": None}, "fileFormat is None: only CSV inventory reports can be read"),
        ({"fileSchema": "Bucket, Size"}, "fileSchema 'Bucket, Size' lacks Key"),
        ({"destinationBucket": "inv-bucket"}, "destinationBucket 'inv-bucket' is not an S3 bucket ARN"),
        ({"files": [{"size": 1}]}, "files must be a list of objects with a key"),
    ],
)
def test_rejects_unusable_manifest_json(s3, make_bucket, overrides, cause):
    source, destination = make_bucket("src"), make_bucket("inv")
    uri = _publish(s3, destination, source, [], **overrides)
    with pytest.raises(ManifestError) as raised:
        list(read_inventory(s3, uri))
    assert str(raised.value).startswith(f"inventory {uri}: {cause}")


def test_rejects_manifest_json_that_is_not_json(s3, make_bucket):
    bucket = make_bucket("inv")
    s3.put_object(Bucket=bucket, Key="manifest.json", Body=b"{not json")
    with pytest.raises(ManifestError, match=rf"inventory s3://{bucket}/manifest.json: manifest.json is not valid JSON"):
        list(read_inventory(s3, f"s3://{bucket}/manifest.json"))


def test_missing_manifest_json_names_uri_and_code(s3, make_bucket):
    bucket = make_bucket("inv")
    with pytest.raises(ManifestError) as raised:
        list(read_inventory(s3, f"s3://{bucket}/nope/manifest.json"))
    assert str(raised.value) == (
        f"inventory s3://{bucket}/nope/manifest.json: cannot read s3://{bucket}/nope/manifest.json: NoSuchKey"
    )


def test_missing_data_file_names_the_file(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("inv")
    uri = _publish(s3, destination, source, [_gzipped_csv([])])
    s3.delete_object(Bucket=destination, Key=f"inventory/{source}/daily/data/part-0.csv.gz")
    with pytest.raises(ManifestError, match=rf"inventory file s3://{destination}/inventory/{source}/daily/data/part-0"):
        list(read_inventory(s3, uri))


def test_data_file_that_is_not_gzip_is_reported(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("inv")
    uri = _publish(s3, destination, source, [b'"plain","csv"\n'])
    with pytest.raises(ManifestError, match=r"part-0\.csv\.gz: not a valid gzip file"):
        list(read_inventory(s3, uri))


def test_truncated_gzip_is_reported(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("inv")
    whole = _gzipped_csv([[source, f"k{i}", "", "true", "false", "1", "d", "e"] for i in range(500)])
    uri = _publish(s3, destination, source, [whole[: len(whole) // 2]])
    with pytest.raises(ManifestError, match=r"part-0\.csv\.gz: not a valid gzip file"):
        list(read_inventory(s3, uri))


@pytest.mark.parametrize(
    ("record", "cause"),
    [
        (["{source}", "k", "v"], "line 2: expected 8 columns (Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"),
        (["{source}", "bad%zz", "v", "true", "false", "1", "d", "e"], "line 2: bad URL encoding in key 'bad%zz'"),
        (["{source}", "k", "v", "true", "false", "1.5", "d", "e"], "line 2: Size '1.5' is not a decimal number"),
        (["Not_A_Bucket", "k", "v", "true", "false", "1", "d", "e"], "line 2: invalid bucket name 'Not_A_Bucket'"),
    ],
)
def test_bad_rows_name_the_file_and_line(s3, make_bucket, record, cause):
    source, destination = make_bucket("src"), make_bucket("inv")
    good = [source, "ok", "v", "true", "false", "1", "d", "e"]
    uri = _publish(s3, destination, source, [_gzipped_csv([good, [field.format(source=source) for field in record]])])
    with pytest.raises(ManifestError) as raised:
        list(read_inventory(s3, uri))
    assert str(raised.value).startswith(
        f"inventory file s3://{destination}/inventory/{source}/daily/data/part-0.csv.gz {cause}"
    )
