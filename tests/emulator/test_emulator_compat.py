"""The same boto3 calls against the emulator and against moto's server, for what moto implements like S3."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from conftest import MiB


def error_of(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_put_head_get_keep_bytes_metadata_and_tags(client, bucket):
    body = os.urandom(3000)
    put = client.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=body, ContentType="video/mxf",
                            Metadata={"origin": "camera-1"}, Tagging="project=x&stage=raw", CacheControl="no-cache")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    head = client.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert (head["ContentLength"], head["ETag"], head["ContentType"]) == (3000, put["ETag"], "video/mxf")
    assert head["Metadata"] == {"origin": "camera-1"}
    assert head["CacheControl"] == "no-cache"
    assert head.get("TagCount") == 2
    assert client.get_object(Bucket=bucket, Key="dir/a b+c.bin")["Body"].read() == body
    ranged = client.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range="bytes=100-199")
    assert ranged["ContentRange"] == "bytes 100-199/3000"
    assert ranged["Body"].read() == body[100:200]
    tags = client.get_object_tagging(Bucket=bucket, Key="dir/a b+c.bin")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("project", "x"), ("stage", "raw")]


def test_list_objects_v2_pages_and_groups_by_delimiter(client, bucket):
    keys = ["a/1", "a/2", "b/1", "c", "d e", "d/x/y", "é"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    paginator = client.get_paginator("list_objects_v2")
    flat = [item["Key"] for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
            for item in page.get("Contents", [])]
    assert flat == sorted(keys)
    pages = list(paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [item["Key"] for page in pages for item in page.get("Contents", [])] == ["c", "d e", "é"]
    assert [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] == ["a/", "b/", "d/"]
    under_a = client.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [(item["Key"], item["Size"]) for item in under_a["Contents"]] == [("a/1", 1), ("a/2", 1)]
    assert client.list_objects_v2(Bucket=bucket, StartAfter="c")["Contents"][0]["Key"] == "d e"


def test_listing_shows_odd_keys_and_overwritten_objects(client, bucket):
    keys = ["a&b<c>.txt", "q\"'.txt", "sp ace+plus", "ü/é€", "%41", "z/1"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")

    def listed(**args):
        return [(item["Key"], item["Size"]) for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}, **args) for item in page.get("Contents", [])]
    assert listed() == [(key, 1) for key in sorted(keys)]
    assert listed(Prefix="z") == [("z/1", 1)]
    client.put_object(Bucket=bucket, Key="%41", Body=b"xyz")  # a listing shows the new object, not the first
    assert dict(listed())["%41"] == 3


def test_copy_object_metadata_and_tagging_directives(client, bucket):
    client.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain", Metadata={"k": "v"},
                      Tagging="t=1")
    source = {"Bucket": bucket, "Key": "src"}
    copied = client.copy_object(Bucket=bucket, Key="copy", CopySource=source)
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    head = client.head_object(Bucket=bucket, Key="copy")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"k": "v"})
    assert client.get_object_tagging(Bucket=bucket, Key="copy")["TagSet"] == [{"Key": "t", "Value": "1"}]

    client.copy_object(Bucket=bucket, Key="replaced", CopySource=source, MetadataDirective="REPLACE",
                       ContentType="application/json", Metadata={"new": "1"}, TaggingDirective="REPLACE", Tagging="u=2")
    head = client.head_object(Bucket=bucket, Key="replaced")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"new": "1"})
    assert client.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "u", "Value": "2"}]
    assert client.get_object(Bucket=bucket, Key="replaced")["Body"].read() == b"payload"


def test_copy_object_to_itself_without_changes_is_refused(client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    call = lambda: client.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"})  # noqa: E731
    assert error_of(call) == (400, "InvalidRequest")
    client.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
                       MetadataDirective="REPLACE", Metadata={"changed": "yes"})
    assert client.head_object(Bucket=bucket, Key="k")["Metadata"] == {"changed": "yes"}


def test_multipart_copy_by_ranges_lists_parts_and_completes(client, bucket):
    body = os.urandom(11 * MiB)
    client.put_object(Bucket=bucket, Key="source", Body=body)
    upload = client.create_multipart_upload(Bucket=bucket, Key="target", Metadata={"m": "1"}, ContentType="video/mp4")
    upload_id = upload["UploadId"]
    ranges = [(0, 5 * MiB - 1), (5 * MiB, 10 * MiB - 1), (10 * MiB, 11 * MiB - 1)]
    etags = []
    for number, (first, last) in enumerate(ranges, 1):
        result = client.upload_part_copy(Bucket=bucket, Key="target", UploadId=upload_id, PartNumber=number,
                                         CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange=f"bytes={first}-{last}")
        etags.append(result["CopyPartResult"]["ETag"])
    assert etags[0] == f'"{hashlib.md5(body[:5 * MiB]).hexdigest()}"'
    listed = client.list_parts(Bucket=bucket, Key="target", UploadId=upload_id, MaxParts=2)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MiB), (2, 5 * MiB)]
    assert listed["IsTruncated"] is True
    rest = client.list_parts(Bucket=bucket, Key="target", UploadId=upload_id, PartNumberMarker=listed["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]

    parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
    done = client.complete_multipart_upload(Bucket=bucket, Key="target", UploadId=upload_id, MultipartUpload={"Parts": parts})
    expected = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in etags)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    head = client.head_object(Bucket=bucket, Key="target")
    assert (head["ContentLength"], head["ETag"], head["Metadata"], head["ContentType"]) == (11 * MiB, done["ETag"], {"m": "1"}, "video/mp4")
    assert client.get_object(Bucket=bucket, Key="target")["Body"].read() == body
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket)


def test_complete_refuses_a_small_non_last_part(client, bucket):
    client.put_object(Bucket=bucket, Key="source", Body=os.urandom(2 * MiB))
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="target")["UploadId"]
    parts = []
    for number in (1, 2):
        result = client.upload_part_copy(Bucket=bucket, Key="target", UploadId=upload_id, PartNumber=number,
                                         CopySource=f"{bucket}/source", CopySourceRange=f"bytes={(number - 1) * MiB}-{number * MiB - 1}")
        parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
    call = lambda: client.complete_multipart_upload(Bucket=bucket, Key="target", UploadId=upload_id,  # noqa: E731
                                                    MultipartUpload={"Parts": parts})
    assert error_of(call) == (400, "EntityTooSmall")


def test_list_multipart_uploads_and_abort(client, bucket):
    first = client.create_multipart_upload(Bucket=bucket, Key="x/one")["UploadId"]
    second = client.create_multipart_upload(Bucket=bucket, Key="x/two")["UploadId"]
    listed = client.list_multipart_uploads(Bucket=bucket)
    assert sorted((u["Key"], u["UploadId"]) for u in listed["Uploads"]) == [("x/one", first), ("x/two", second)]
    client.abort_multipart_upload(Bucket=bucket, Key="x/one", UploadId=first)
    assert [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["x/two"]
    call = lambda: client.abort_multipart_upload(Bucket=bucket, Key="x/one", UploadId=first)  # noqa: E731
    assert error_of(call) == (404, "NoSuchUpload")


def test_missing_keys_and_buckets_answer_like_s3(client, bucket):
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="nope")) == (404, "NoSuchKey")
    assert error_of(lambda: client.head_object(Bucket=bucket, Key="nope")) == (404, "404")
    assert error_of(lambda: client.list_objects_v2(Bucket=bucket + "-missing")) == (404, "NoSuchBucket")
    assert error_of(lambda: client.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/nope")) == (404, "NoSuchKey")
    assert error_of(lambda: client.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}-missing/nope")) == (404, "NoSuchBucket")
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_of(lambda: client.delete_bucket(Bucket=bucket)) == (409, "BucketNotEmpty")
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="k", Range="bytes=10-20")) == (416, "InvalidRange")


def test_conditional_writes(client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    call = lambda: client.put_object(Bucket=bucket, Key="k", Body=b"y", IfNoneMatch="*")  # noqa: E731
    assert error_of(call) == (412, "PreconditionFailed")
    client.put_object(Bucket=bucket, Key="new", Body=b"y", IfNoneMatch="*")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_tagging_put_get_delete(client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    client.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]})
    assert sorted((t["Key"], t["Value"]) for t in client.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == [("a", "1"), ("b", "")]
    client.delete_object_tagging(Bucket=bucket, Key="k")
    assert client.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    assert error_of(lambda: client.put_object_tagging(Bucket=bucket, Key="k", Tagging=too_many)) == (400, "BadRequest")


def test_delete_objects_and_bucket(client, bucket):
    for key in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    deleted = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["a", "b", "zz"]
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]
    client.delete_object(Bucket=bucket, Key="c")
    client.delete_bucket(Bucket=bucket)
    assert error_of(lambda: client.head_bucket(Bucket=bucket))[0] == 404


def test_copy_source_keys_with_special_characters(client, bucket):
    key = "media/2026 06/clip+1 %41?&=é#.mxf"
    client.put_object(Bucket=bucket, Key=key, Body=b"special")
    client.copy_object(Bucket=bucket, Key="out/" + key, CopySource={"Bucket": bucket, "Key": key})
    assert client.get_object(Bucket=bucket, Key="out/" + key)["Body"].read() == b"special"
    listed = client.list_objects_v2(Bucket=bucket, Prefix="out/")
    assert [o["Key"] for o in listed["Contents"]] == ["out/" + key]


def test_crc64nvme_multipart_upload_reports_its_checksum_type(client, bucket):
    upload = client.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC64NVME")
    assert upload["ChecksumAlgorithm"] == "CRC64NVME"
    client.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])
