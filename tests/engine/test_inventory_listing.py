"""Selecting objects for a manifest: listing with filters, several sources, the identical-at-destination merge,
S3 Inventory input, and clear listing errors. Against moto's server (and botocore's Stubber for AccessDenied)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import Stubber

from mxtransfer_worker.inventory import (
    ListingCounts,
    ObjectFilter,
    check_sources,
    select_inventory,
    select_listed,
)
from mxtransfer_worker.listing import ListingError
from mxtransfer_worker.manifest import ManifestRow, encode_key, open_manifest, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3uri import S3Uri

ODD_KEYS = ["in/a b+c,d.mov", "in/ünï/çødé.txt", "in/100%.txt", 'in/quote"s', "in/tab\there", "in/a//b", "in/😀"]


def put(s3, bucket, key, size=1, body=None):
    s3.put_object(Bucket=bucket, Key=key, Body=body if body is not None else b"x" * size)


def keys(rows):
    return [row.key for row in rows]


def test_lists_every_object_under_the_prefix_with_sizes_in_s3_order(s3, make_bucket):
    bucket = make_bucket("src")
    for index, key in enumerate(ODD_KEYS):
        put(s3, bucket, key, size=index)
    put(s3, bucket, "out/not-listed", 3)
    counts = ListingCounts()
    rows = list(select_listed(s3, [S3Uri(bucket, "in/")], counts=counts))
    assert keys(rows) == sorted(ODD_KEYS, key=lambda key: key.encode())
    assert {row.key: row.size for row in rows} == {key: index for index, key in enumerate(ODD_KEYS)}
    assert all(row.bucket == bucket and row.version_id is None for row in rows)
    assert (counts.listed, counts.filtered_out, counts.listed_bytes) == (7, 0, sum(range(7)))


def test_odd_keys_round_trip_through_the_uploaded_manifest(s3, make_bucket):
    bucket = make_bucket("src")
    for key in ODD_KEYS:
        put(s3, bucket, key, size=2)
    stats = upload_manifest(s3, select_listed(s3, [S3Uri(bucket, "in/")]), f"s3://{bucket}/m/manifest.csv")
    assert (stats.rows, stats.bytes, stats.unknown_sizes) == (7, 14, 0)
    back = list(open_manifest(s3, f"s3://{bucket}/m/manifest.csv"))
    assert sorted(keys(back)) == sorted(ODD_KEYS) and {row.size for row in back} == {2}
    text = s3.get_object(Bucket=bucket, Key="m/manifest.csv")["Body"].read().decode()
    assert f"{bucket},{encode_key('in/a b+c,d.mov')}\n" in text


def test_include_exclude_and_size_filters(s3, make_bucket):
    bucket = make_bucket("src")
    for key, size in [("p/a.mov", 10), ("p/sub/b.mov", 20), ("p/c.txt", 30), ("p/sub/d.mov.tmp", 40),
                      ("p/big.mov", 1000), ("p/tiny.mov", 1)]:
        put(s3, bucket, key, size)
    counts = ListingCounts()
    selected = ObjectFilter(include=("*.mov", "*.txt"), exclude=("sub/*.tmp", "c.*"), min_size=5, max_size=500)
    rows = list(select_listed(s3, [S3Uri(bucket, "p/")], selected, counts))
    assert keys(rows) == ["p/a.mov", "p/sub/b.mov"]
    assert (counts.listed, counts.filtered_out) == (6, 4)


def test_patterns_match_the_key_relative_to_the_source_prefix(s3, make_bucket):
    bucket = make_bucket("src")
    put(s3, bucket, "deep/x/a.mov")
    put(s3, bucket, "deep/a.mov")
    assert keys(select_listed(s3, [S3Uri(bucket, "deep/")], ObjectFilter(include=("a.mov",)))) == ["deep/a.mov"]


def test_modification_window_is_half_open(s3, make_bucket):
    bucket = make_bucket("src")
    put(s3, bucket, "k/one")
    modified = s3.head_object(Bucket=bucket, Key="k/one")["LastModified"]
    hour = timedelta(hours=1)
    assert keys(select_listed(s3, [S3Uri(bucket, "k/")], ObjectFilter(modified_after=modified))) == ["k/one"]
    assert keys(select_listed(s3, [S3Uri(bucket, "k/")], ObjectFilter(modified_before=modified))) == []
    assert keys(select_listed(s3, [S3Uri(bucket, "k/")], ObjectFilter(modified_after=modified - hour,
                                                                       modified_before=modified + hour))) == ["k/one"]
    assert keys(select_listed(s3, [S3Uri(bucket, "k/")], ObjectFilter(modified_after=modified + hour))) == []


def test_naive_times_are_utc_and_bad_filters_are_refused():
    assert ObjectFilter(modified_after=datetime(2026, 1, 1)).modified_after == datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="must be before"):
        ObjectFilter(modified_after=datetime(2026, 1, 2), modified_before=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="larger than max_size"):
        ObjectFilter(min_size=10, max_size=5)
    with pytest.raises(ValueError, match="min_size"):
        ObjectFilter(min_size=-1)
    with pytest.raises(ValueError, match="include"):
        ObjectFilter(include=("",))
    assert ObjectFilter(include="*.mov").include == ("*.mov",)


def test_several_sources_one_after_the_other(s3, make_bucket):
    first, second = make_bucket("one"), make_bucket("two")
    put(s3, first, "a/1")
    put(s3, first, "b/2")
    put(s3, second, "c/3")
    counts = ListingCounts()
    rows = list(select_listed(s3, [S3Uri(second, "c/"), S3Uri(first, "a/"), S3Uri(first, "b/")], counts=counts))
    assert [(row.bucket, row.key) for row in rows] == [(second, "c/3"), (first, "a/1"), (first, "b/2")]
    assert counts.sources == [f"s3://{second}/c/", f"s3://{first}/a/", f"s3://{first}/b/"]


def test_overlapping_sources_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        check_sources([S3Uri("bkt", "a/"), S3Uri("bkt", "a/b/")])
    check_sources([S3Uri("bkt", "a/"), S3Uri("bkt", "b/"), S3Uri("other", "a/")])


def test_empty_source_gives_no_rows(s3, make_bucket):
    bucket = make_bucket("src")
    counts = ListingCounts()
    assert list(select_listed(s3, [S3Uri(bucket, "nothing/")], counts=counts)) == []
    assert counts.listed == 0


def test_identical_objects_at_the_destination_are_left_out(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    names = ["a", "b b", "c+", "d/é", "e/😀", "f"]
    for name in names:
        put(s3, source, f"in/{name}", body=name.encode())
    # same bytes at the rewritten key: left out; different bytes or size: kept; only in the source: kept
    put(s3, destination, "out/a", body=b"a")
    put(s3, destination, "out/b b", body=b"b b")
    put(s3, destination, "out/c+", body=b"c-")          # same size, other ETag
    put(s3, destination, "out/d/é", body=b"longer")     # other size
    put(s3, destination, "out/e/😀", body="e/😀".encode())
    put(s3, destination, "out/zzz", body=b"only at the destination")
    put(s3, destination, "in/f", body=b"f")             # identical, but not at the rewritten key
    options = CopyOptions(destination, destination_prefix="out/", source_prefix="in/")
    counts = ListingCounts()
    rows = list(select_listed(s3, [S3Uri(source, "in/")], counts=counts, skip_identical=options))
    assert keys(rows) == ["in/c+", "in/d/é", "in/f"]
    assert (counts.identical, counts.identical_bytes) == (3, len("a") + len("b b") + len("e/😀".encode()))


def test_identical_filter_with_a_listing_narrower_than_the_copy_prefix(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    put(s3, source, "root/x/1", body=b"1")
    put(s3, source, "root/x/2", body=b"2")
    put(s3, destination, "copy/x/1", body=b"1")
    options = CopyOptions(destination, destination_prefix="copy/", source_prefix="root/")
    assert keys(select_listed(s3, [S3Uri(source, "root/x/")], skip_identical=options)) == ["root/x/2"]


def test_identical_filter_keeps_keys_outside_the_copy_prefix(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    put(s3, source, "a/1", body=b"1")
    put(s3, source, "b/1", body=b"1")
    put(s3, destination, "out/1", body=b"1")
    options = CopyOptions(destination, destination_prefix="out/", source_prefix="b/")
    # a/1 has no destination key (the copy reports that); b/1 is already there
    assert keys(select_listed(s3, [S3Uri(source, "")], skip_identical=options)) == ["a/1"]


def test_missing_bucket_is_named(s3, make_bucket):
    with pytest.raises(ListingError, match="cannot list s3://no-such-bucket-here/p/: NoSuchBucket: bucket 'no-such-bucket-here'") as caught:
        list(select_listed(s3, [S3Uri("no-such-bucket-here", "p/")]))
    assert caught.value.permanent


def test_missing_destination_bucket_is_named(s3, make_bucket):
    source = make_bucket("src")
    put(s3, source, "k")
    options = CopyOptions("no-such-destination")
    with pytest.raises(ListingError, match="bucket 'no-such-destination' does not exist"):
        list(select_listed(s3, [S3Uri(source, "")], skip_identical=options))


def test_access_denied_is_named(s3):
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    with stubber, pytest.raises(ListingError, match="AccessDenied: the role may not list bucket 'locked-bucket'.*s3:ListBucket") as caught:
        list(select_listed(s3, [S3Uri("locked-bucket", "p/")]))
    assert caught.value.permanent


def test_other_listing_errors_may_be_retried(s3):
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", "SlowDown", "Reduce your request rate", 503)
    with stubber, pytest.raises(ListingError, match="cannot list s3://busy-bucket/: SlowDown: Reduce your request rate") as caught:
        list(select_listed(s3, [S3Uri("busy-bucket", "")]))
    assert not caught.value.permanent


def write_inventory(s3, bucket, rows, schema="Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"):
    data = "".join(",".join(f'"{field}"' for field in row) + "\n" for row in rows)
    s3.put_object(Bucket=bucket, Key="inv/data/1.csv.gz", Body=gzip.compress(data.encode()))
    manifest = {"sourceBucket": "media", "destinationBucket": f"arn:aws:s3:::{bucket}", "fileFormat": "CSV",
                "fileSchema": schema, "files": [{"key": "inv/data/1.csv.gz"}]}
    s3.put_object(Bucket=bucket, Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    return f"s3://{bucket}/inv/manifest.json"


def test_inventory_report_with_filters_and_sources(s3, make_bucket):
    bucket = make_bucket("inv")
    uri = write_inventory(s3, bucket, [
        ("media", encode_key("clips/a b.mov"), "v1", "true", "false", "100"),
        ("media", encode_key("clips/old.tmp"), "", "true", "false", "5"),
        ("media", encode_key("clips/gone.mov"), "v2", "true", "true", ""),
        ("media", encode_key("other/b.mov"), "", "true", "false", "7"),
        ("media", encode_key("clips/small.mov"), "", "true", "false", "3"),
    ])
    counts = ListingCounts()
    rows = list(select_inventory(s3, uri, ObjectFilter(exclude=("*.tmp",), min_size=4), counts,
                                 sources=[S3Uri("media", "clips/")]))
    assert rows == [ManifestRow("media", "clips/a b.mov", "v1", 100)]
    assert (counts.listed, counts.filtered_out, counts.sources) == (4, 3, [uri])
    assert len(list(select_inventory(s3, uri))) == 4


def test_inventory_refuses_time_filters(s3):
    with pytest.raises(ValueError, match="modification times"):
        list(select_inventory(s3, "s3://inv/manifest.json", ObjectFilter(modified_after=datetime(2026, 1, 1))))
