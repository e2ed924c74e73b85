"""S3 semantics the emulator implements and moto does not (or not like S3): copy preconditions, bucket owners,
range validation, upload ids, size limits, archived objects, virtual objects and their checksums."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from conftest import MiB, make_client, pipelined, unique

GiB = 1024**3
TiB = 1024**4


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    error = dict(caught.value.response["Error"])
    error["Status"] = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error


def test_copy_source_if_match_guards_copy_and_part_copy(emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    etag = client.put_object(Bucket=bucket, Key="src", Body=b"v1")["ETag"]
    client.copy_object(Bucket=bucket, Key="ok", CopySource=f"{bucket}/src", CopySourceIfMatch=etag)
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="stale", CopySource=f"{bucket}/src", CopySourceIfMatch='"0123"'))
    assert (error["Status"], error["Code"], error["Condition"]) == (412, "PreconditionFailed", "x-amz-copy-source-If-Match")
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    error = error_of(lambda: client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1,
                                                     CopySource=f"{bucket}/src", CopySourceIfMatch='"0123"'))
    assert (error["Status"], error["Code"]) == (412, "PreconditionFailed")
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/src", CopySourceIfNoneMatch=etag))
    assert error["Code"] == "PreconditionFailed"
    assert "stale" not in [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]


def test_expected_bucket_owner_mismatch_is_access_denied(emulator):
    owner, other = "111122223333", "444455556666"
    source, target = unique("src"), unique("dst")
    owner_client = make_client(emulator.url, access_key=f"AKIA{owner}EXAMPLE")
    owner_client.create_bucket(Bucket=source)
    emulator.create_bucket(target, account=other)
    owner_client.put_object(Bucket=source, Key="k", Body=b"x")
    assert owner_client.head_object(Bucket=source, Key="k", ExpectedBucketOwner=owner)["ContentLength"] == 1
    error = error_of(lambda: owner_client.head_object(Bucket=source, Key="k", ExpectedBucketOwner=other))
    assert error["Status"] == 403
    error = error_of(lambda: owner_client.list_objects_v2(Bucket=source, ExpectedBucketOwner=other))
    assert (error["Status"], error["Code"]) == (403, "AccessDenied")
    copy = dict(Bucket=target, Key="k", CopySource=f"{source}/k")
    error = error_of(lambda: owner_client.copy_object(**copy, ExpectedBucketOwner=other, ExpectedSourceBucketOwner=other))
    assert error["Code"] == "AccessDenied"
    owner_client.copy_object(**copy, ExpectedBucketOwner=other, ExpectedSourceBucketOwner=owner)
    assert [b["Name"] for b in owner_client.list_buckets()["Buckets"]] == [source]


def test_copy_source_range_is_validated(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "src", 10 * MiB)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]

    def part_copy(range_):
        return client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1,
                                       CopySource=f"{bucket}/src", CopySourceRange=range_)

    beyond = error_of(lambda: part_copy(f"bytes=0-{10 * MiB}"))
    assert (beyond["Status"], beyond["Code"]) == (400, "InvalidArgument")
    assert beyond["Message"] == f"Range specified is not valid for source object of size: {10 * MiB}"
    assert error_of(lambda: part_copy("bytes=5-4"))["Code"] == "InvalidArgument"
    assert error_of(lambda: part_copy("bytes=0-"))["Code"] == "InvalidArgument"
    assert part_copy(f"bytes=0-{10 * MiB - 1}")["CopyPartResult"]["ETag"]


@pytest.mark.parametrize("call", ["upload_part_copy", "list_parts", "complete", "abort"])
def test_bogus_upload_id_is_no_such_upload(emu_client, emu_bucket, call):
    client, bucket = emu_client, emu_bucket
    client.put_object(Bucket=bucket, Key="src", Body=b"x")
    calls = {
        "upload_part_copy": lambda: client.upload_part_copy(Bucket=bucket, Key="k", UploadId="bogus", PartNumber=1,
                                                            CopySource=f"{bucket}/src"),
        "list_parts": lambda: client.list_parts(Bucket=bucket, Key="k", UploadId="bogus"),
        "complete": lambda: client.complete_multipart_upload(Bucket=bucket, Key="k", UploadId="bogus",
                                                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}),
        "abort": lambda: client.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="bogus"),
    }
    error = error_of(calls[call])
    assert (error["Status"], error["Code"], error["UploadId"]) == (404, "NoSuchUpload", "bogus")


def test_size_limits_of_copies_and_parts(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "big", 5 * GiB + 1)
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="c", CopySource=f"{bucket}/big"))
    assert (error["Status"], error["Code"]) == (400, "InvalidRequest")
    assert error["Message"] == "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    assert error_of(lambda: client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1,
                                                    CopySource=f"{bucket}/big"))["Code"] == "InvalidRequest"
    error = error_of(lambda: client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=10001,
                                                     CopySource=f"{bucket}/big", CopySourceRange="bytes=0-9"))
    assert (error["Code"], error["ArgumentName"]) == ("InvalidArgument", "partNumber")


def test_archived_objects_cannot_be_copied_until_restored(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "cold", 10 * MiB, storage_class="DEEP_ARCHIVE")
    emulator.put_virtual_object(bucket, "thawed", 10 * MiB, storage_class="GLACIER", restored=True)
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="c", CopySource=f"{bucket}/cold"))
    assert (error["Status"], error["Code"], error["StorageClass"]) == (403, "InvalidObjectState", "DEEP_ARCHIVE")
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="cold"))["Code"] == "InvalidObjectState"
    assert client.head_object(Bucket=bucket, Key="cold")["StorageClass"] == "DEEP_ARCHIVE"
    client.copy_object(Bucket=bucket, Key="c", CopySource=f"{bucket}/thawed")
    assert "StorageClass" not in client.head_object(Bucket=bucket, Key="c")  # a copy is STANDARD unless asked


def test_virtual_objects_read_back_deterministic_bytes(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "v", 300_000, metadata={"a": "b"}, content_type="video/mxf", tags={"t": "1"})
    head = client.head_object(Bucket=bucket, Key="v")
    assert (head["ContentLength"], head["Metadata"], head["ContentType"], head["TagCount"]) == (300_000, {"a": "b"}, "video/mxf", 1)
    whole = client.get_object(Bucket=bucket, Key="v")["Body"].read()
    assert len(whole) == 300_000 and whole == client.get_object(Bucket=bucket, Key="v")["Body"].read()
    assert client.get_object(Bucket=bucket, Key="v", Range="bytes=65000-70000")["Body"].read() == whole[65000:70001]


def test_large_put_object_keeps_metadata_only(emulator, emu_bucket):
    client = make_client(emulator.url, request_checksum_calculation="when_supported")
    body = bytes(range(256)) * (80 * 1024)  # 20 MiB: over the session emulator's 16 MiB small-object limit
    put = client.put_object(Bucket=emu_bucket, Key="big", Body=body)
    head = client.head_object(Bucket=emu_bucket, Key="big", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert head["ChecksumCRC32"] == put["ChecksumCRC32"]  # the checksum the client sent, kept as metadata
    copied = client.copy_object(Bucket=emu_bucket, Key="big-copy", CopySource=f"{emu_bucket}/big")
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]


def _part_copies(url: str, bucket: str, key: str, upload_id: str, source: str, ranges: list[tuple[int, int]]) -> list[str]:
    """UploadPartCopy of each range, pipelined over one connection; returns the part ETags."""
    requests = [
        ("PUT", f"/{bucket}/{quote(key)}?partNumber={number}&uploadId={upload_id}",
         {"x-amz-copy-source": quote(f"{bucket}/{source}"), "x-amz-copy-source-range": f"bytes={first}-{last}"})
        for number, (first, last) in enumerate(ranges, 1)
    ]
    etags = []
    for status, body in pipelined(url, requests):
        assert status == 200, body
        etags.append(re.search(rb"<ETag>(.*?)</ETag>", body).group(1).decode())
    return etags


def test_48_tib_object_copies_in_10000_parts_of_5_gib(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    size = 48 * TiB
    part = -(-size // 10_000)
    assert part <= 5 * GiB
    source = emulator.put_virtual_object(bucket, "huge.mxf", size, metadata={"reel": "7"})
    upload = client.create_multipart_upload(Bucket=bucket, Key="huge-copy.mxf", ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT")
    ranges = [(start, min(size, start + part) - 1) for start in range(0, size, part)]
    assert len(ranges) == 10_000
    etags = _part_copies(emulator.url, bucket, "huge-copy.mxf", upload["UploadId"], "huge.mxf", ranges)

    first = client.list_parts(Bucket=bucket, Key="huge-copy.mxf", UploadId=upload["UploadId"])
    assert ([p["PartNumber"] for p in first["Parts"]], first["IsTruncated"]) == (list(range(1, 1001)), True)
    last = client.list_parts(Bucket=bucket, Key="huge-copy.mxf", UploadId=upload["UploadId"], PartNumberMarker=9000)
    assert ([p["PartNumber"] for p in last["Parts"]], last["IsTruncated"]) == (list(range(9001, 10_001)), False)
    assert last["Parts"][-1]["Size"] == size - 9_999 * part

    done = client.complete_multipart_upload(
        Bucket=bucket, Key="huge-copy.mxf", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]},
        ChecksumCRC64NVME=source["Checksum"], ChecksumType="FULL_OBJECT",
    )
    assert done["ETag"].endswith('-10000"')
    head = client.head_object(Bucket=bucket, Key="huge-copy.mxf", ChecksumMode="ENABLED")
    assert head["ContentLength"] == size
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (source["Checksum"], "FULL_OBJECT")
    assert client.head_object(Bucket=bucket, Key="huge-copy.mxf", PartNumber=10_000)["PartsCount"] == 10_000


def test_a_wrong_part_layout_changes_the_full_object_checksum(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    source = emulator.put_virtual_object(bucket, "src", 12 * MiB)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC64NVME")["UploadId"]
    shifted = [(0, 6 * MiB - 1), (6 * MiB + 1, 12 * MiB - 1)]  # one byte skipped
    etags = _part_copies(emulator.url, bucket, "dst", upload_id, "src", shifted)
    parts = {"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]}
    error = error_of(lambda: client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id,
                                                              MultipartUpload=parts, ChecksumCRC64NVME=source["Checksum"]))
    assert (error["Status"], error["Code"]) == (400, "BadDigest")
    client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload=parts)
    head = client.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head["ContentLength"] == 12 * MiB - 1 and head["ChecksumCRC64NVME"] != source["Checksum"]


def test_retried_complete_answers_like_the_first(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "src", 6 * MiB)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    etag = client.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                                   CopySource=f"{bucket}/src")["CopyPartResult"]["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    first = client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload=parts)
    again = client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload=parts)
    assert again["ETag"] == first["ETag"]
    assert error_of(lambda: client.list_parts(Bucket=bucket, Key="dst", UploadId=upload_id))["Code"] == "NoSuchUpload"


def test_complete_if_none_match_refuses_to_overwrite(emulator, emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    emulator.put_virtual_object(bucket, "src", 6 * MiB)
    emulator.put_virtual_object(bucket, "dst", 1)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    etag = client.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                                   CopySource=f"{bucket}/src")["CopyPartResult"]["ETag"]
    error = error_of(lambda: client.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=upload_id, IfNoneMatch="*", MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}))
    assert (error["Status"], error["Code"]) == (412, "PreconditionFailed")
    assert client.head_object(Bucket=bucket, Key="dst")["ContentLength"] == 1


def test_copy_object_if_none_match_and_if_match_guard_the_destination(emu_client, emu_bucket):
    client, bucket = emu_client, emu_bucket
    client.put_object(Bucket=bucket, Key="src", Body=b"new bytes")
    existing = client.put_object(Bucket=bucket, Key="dst", Body=b"old")["ETag"]
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", IfNoneMatch="*"))
    assert (error["Status"], error["Code"]) == (412, "PreconditionFailed")
    error = error_of(lambda: client.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", IfMatch='"0123"'))
    assert (error["Status"], error["Code"]) == (412, "PreconditionFailed")
    assert client.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    client.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", IfMatch=existing)
    client.copy_object(Bucket=bucket, Key="fresh", CopySource=f"{bucket}/src", IfNoneMatch="*")
    assert client.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new bytes"
    assert client.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"new bytes"


def test_listing_fifty_thousand_virtual_keys(emulator, emu_client, emu_bucket):
    keys = [f"{prefix}/{index:05d}.mxf" for prefix in ("a", "b", "c", "d") for index in range(12_500)]
    emulator.put_virtual_objects(emu_bucket, ((key, 1 * GiB) for key in reversed(keys)))
    pages = emu_client.get_paginator("list_objects_v2").paginate(
        Bucket=emu_bucket, Prefix="c/012", StartAfter="c/01209.mxf", PaginationConfig={"PageSize": 30})
    listed = [o["Key"] for page in pages for o in page["Contents"]]
    assert listed == [f"c/{index:05d}.mxf" for index in range(1210, 1300)]
    top = emu_client.list_objects_v2(Bucket=emu_bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "c/", "d/"]
    assert emu_client.list_objects_v2(Bucket=emu_bucket, Prefix="d/", MaxKeys=1)["KeyCount"] == 1
