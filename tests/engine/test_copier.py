"""Copying single objects and sets of rows against moto's S3 server over HTTP.

moto 5.2.5 does not implement S3 object annotations (ListObjectAnnotations answers 500), so these tests turn
``copy_annotations`` off; annotations are covered with botocore's Stubber in ``test_copier_stubbed.py``. Rows
that must fail (missing key or bucket, archived, too long a key, a copy onto itself...) are in the bad-input
corpus, ``test_bad_input.py``.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor


from mxtransfer_worker.copier import FAILED, SKIPPED, SUCCEEDED, ObjectCopier
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.runner import copy_rows

ODD_KEYS = [
    "with space/a file.mov",
    "plus+sign+file.mxf",
    "percent%20literal%.txt",
    "hash#and?question.wav",
    "unicodé/日本語/ファイル🎬.mp4",
    "commas,and;semi\"quotes'.xml",
    "k" * 1024,
]


def options_for(bucket: str, **overrides) -> CopyOptions:
    settings = {"copy_annotations": False, "object_concurrency": 8, "part_concurrency": 8,
                "retry_base_delay": 0.01}
    settings.update(overrides)
    return CopyOptions(destination_bucket=bucket, **settings)


def run(client, rows, options) -> dict:
    results = []
    copy_rows(client, rows, options, results.append)
    assert len(results) == len(rows)
    return {(result.row.bucket, result.row.key): result for result in results}


def copy_one(client, row, options):
    with ThreadPoolExecutor(options.part_concurrency) as parts:
        return ObjectCopier(client, options, parts).copy(row)


def test_zero_byte_and_odd_keys_are_copied_verified_and_byte_identical(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    keys = ["empty/zero-bytes"] + ODD_KEYS
    for key in keys:
        s3.put_object(Bucket=source, Key=key, Body=b"" if key.startswith("empty") else key.encode())
    results = run(s3, [ManifestRow(source, key) for key in keys], options_for(destination))
    for key in keys:
        result = results[(source, key)]
        assert result.status == SUCCEEDED, result.message
        assert result.destination_key == key
        assert result.message == "CopyObject; verified ETag (MD5) in the copy's response"
        body = s3.get_object(Bucket=destination, Key=key)["Body"].read()
        assert body == (b"" if key.startswith("empty") else key.encode())


def test_multipart_copy_of_64_mib_is_byte_identical_with_metadata_and_tags(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    data = os.urandom(64 * MiB + 12345)
    s3.put_object(Bucket=source, Key="masters/film.mov", Body=data, ContentType="video/quicktime",
                  CacheControl="max-age=60", ContentDisposition='attachment; filename="film.mov"',
                  ContentLanguage="fr", Metadata={"producer": "ACME", "take": "7"},
                  Tagging="rights=worldwide&tier=gold")
    options = options_for(destination, multipart_threshold=8 * MiB, part_size=8 * MiB,
                          source_prefix="masters/", destination_prefix="incoming/acme/")
    result = copy_one(s3, ManifestRow(source, "masters/film.mov"), options)

    assert result.status == SUCCEEDED, result.message
    assert result.destination_key == "incoming/acme/film.mov"
    assert "multipart copy, 9 parts" in result.message
    assert result.bytes == len(data)
    copied = s3.get_object(Bucket=destination, Key="incoming/acme/film.mov")
    assert hashlib.sha256(copied["Body"].read()).digest() == hashlib.sha256(data).digest()
    assert copied["ETag"].endswith('-9"')
    assert copied["ContentType"] == "video/quicktime"
    assert copied["CacheControl"] == "max-age=60"
    assert copied["ContentDisposition"] == 'attachment; filename="film.mov"'
    assert copied["ContentLanguage"] == "fr"
    assert copied["Metadata"] == {"producer": "ACME", "take": "7"}
    tags = s3.get_object_tagging(Bucket=destination, Key="incoming/acme/film.mov")["TagSet"]
    assert sorted((tag["Key"], tag["Value"]) for tag in tags) == [("rights", "worldwide"), ("tier", "gold")]
    assert s3.list_multipart_uploads(Bucket=destination).get("Uploads", []) == []


def test_multipart_copy_with_a_full_object_checksum_is_verified_by_it(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="a.mxf", Body=os.urandom(12 * MiB), ChecksumAlgorithm="CRC64NVME")
    options = options_for(destination, multipart_threshold=5 * MiB, part_size=5 * MiB)
    result = copy_one(s3, ManifestRow(source, "a.mxf"), options)
    assert result.status == SUCCEEDED, result.message
    assert result.message == "multipart copy, 3 parts; verified size and CRC64NVME"
    source_crc = s3.head_object(Bucket=source, Key="a.mxf", ChecksumMode="ENABLED")["ChecksumCRC64NVME"]
    copy_head = s3.head_object(Bucket=destination, Key="a.mxf", ChecksumMode="ENABLED")
    assert copy_head["ChecksumCRC64NVME"] == source_crc


def test_second_run_skips_everything_already_copied(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="small.txt", Body=b"hello")
    s3.put_object(Bucket=source, Key="big.bin", Body=os.urandom(11 * MiB))
    rows = [ManifestRow(source, "small.txt"), ManifestRow(source, "big.bin")]
    options = options_for(destination, multipart_threshold=5 * MiB, part_size=5 * MiB)
    first = run(s3, rows, options)
    assert {result.status for result in first.values()} == {SUCCEEDED}
    etags = {key: s3.head_object(Bucket=destination, Key=key)["ETag"] for key in ("small.txt", "big.bin")}

    second = run(s3, rows, options)
    assert {result.status for result in second.values()} == {SKIPPED}
    assert second[(source, "small.txt")].message == "destination already matches (same size and ETag)"
    assert "same size" in second[(source, "big.bin")].message
    assert {key: s3.head_object(Bucket=destination, Key=key)["ETag"] for key in etags} == etags


def test_missing_destination_bucket_fails_clearly(s3, make_bucket):
    source = make_bucket("src")
    s3.put_object(Bucket=source, Key="a", Body=b"a")
    result = copy_one(s3, ManifestRow(source, "a"), options_for("no-such-destination-mxt"))
    assert (result.status, result.error_code) == (FAILED, "NoSuchBucket")
    assert "no-such-destination-mxt" in result.message


def test_differing_destination_is_never_overwritten_silently(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="a.txt", Body=b"new content")
    s3.put_object(Bucket=destination, Key="a.txt", Body=b"old")
    result = copy_one(s3, ManifestRow(source, "a.txt"), options_for(destination))
    assert (result.status, result.error_code) == (FAILED, "DestinationExists")
    assert "set overwrite" in result.message
    assert s3.get_object(Bucket=destination, Key="a.txt")["Body"].read() == b"old"

    replaced = copy_one(s3, ManifestRow(source, "a.txt"), options_for(destination, overwrite=True))
    assert replaced.status == SUCCEEDED, replaced.message
    assert s3.get_object(Bucket=destination, Key="a.txt")["Body"].read() == b"new content"
    assert s3.get_object(Bucket=source, Key="a.txt")["Body"].read() == b"new content"


def test_named_source_version_is_copied(s3, make_bucket):
    source, destination = make_bucket("src", versioned=True), make_bucket("dst")
    first = s3.put_object(Bucket=source, Key="v.txt", Body=b"version one")["VersionId"]
    s3.put_object(Bucket=source, Key="v.txt", Body=b"version two")
    result = copy_one(s3, ManifestRow(source, "v.txt", version_id=first), options_for(destination))
    assert result.status == SUCCEEDED, result.message
    assert s3.get_object(Bucket=destination, Key="v.txt")["Body"].read() == b"version one"


def test_storage_class_and_sse_options_apply_to_the_copy(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="a", Body=b"abc")
    s3.put_object(Bucket=source, Key="b", Body=os.urandom(6 * MiB))
    options = options_for(destination, storage_class="STANDARD_IA", sse="AES256",
                          multipart_threshold=5 * MiB, part_size=5 * MiB)
    results = run(s3, [ManifestRow(source, "a"), ManifestRow(source, "b")], options)
    for key in ("a", "b"):
        assert results[(source, key)].status == SUCCEEDED, results[(source, key)].message
        head = s3.head_object(Bucket=destination, Key=key)
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["ServerSideEncryption"] == "AES256"


def test_key_outside_source_prefix_fails_the_row(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    result = copy_one(s3, ManifestRow(source, "other/a"), options_for(destination, source_prefix="mine/"))
    assert (result.status, result.error_code) == (FAILED, "InvalidDestinationKey")
    assert "not under the source prefix 'mine/'" in result.message
