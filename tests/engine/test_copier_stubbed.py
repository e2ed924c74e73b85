"""Copy paths moto's server cannot show, checked request by request with botocore's Stubber.

moto 5.2.5 ignores ``CopySourceIfMatch``, ``ExpectedBucketOwner`` and ``ExpectedSourceBucketOwner``, has
no object annotations and never throttles; these tests assert the exact requests the copier sends and how it
reacts to S3's answers. Parts run one at a time (``part_concurrency=1``) so the request order is fixed.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from mxtransfer_worker.copier import (FAILED, MAX_BACKOFF_SECONDS, PACED_BACKOFF_SECONDS, SKIPPED, SUCCEEDED,
                                      ObjectCopier)
from mxtransfer_worker.errors import CopyError
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB

SOURCE_ETAG = '"0123456789abcdef0123456789abcdef"'
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)
SIZE = 12 * MiB  # three parts of 5 MiB, 5 MiB and 2 MiB


@pytest.fixture
def client():
    """A client that never sends anything: every call must be answered by the Stubber."""
    return boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 0}))


def options(**overrides) -> CopyOptions:
    settings = {"destination_bucket": "dst-bucket", "multipart_threshold": 5 * MiB, "part_size": 5 * MiB,
                "part_concurrency": 1, "copy_annotations": False, "retry_base_delay": 0.0,
                "expected_source_owner": "111111111111", "expected_destination_owner": "222222222222"}
    settings.update(overrides)
    return CopyOptions(**settings)


def source_head(size=SIZE):
    return {"ContentLength": size, "ETag": SOURCE_ETAG, "LastModified": WHEN, "ContentType": "video/mp4",
            "Metadata": {"a": "b"}}


def expect_heads(stubber, size=SIZE):
    stubber.add_response("head_object", source_head(size), {
        "Bucket": "src-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "111111111111"})
    stubber.add_client_error("head_object", "404", http_status_code=404, expected_params={
        "Bucket": "dst-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "222222222222"})
    stubber.add_response("head_bucket", {}, {"Bucket": "dst-bucket"})


def expect_create(stubber):
    stubber.add_response("get_object_tagging", {"TagSet": []}, {
        "Bucket": "src-bucket", "Key": "film.mp4", "ExpectedBucketOwner": "111111111111"})
    stubber.add_response("create_multipart_upload", {"UploadId": "upload-1"}, {
        "Bucket": "dst-bucket", "Key": "film.mp4", "Metadata": {"a": "b"}, "ContentType": "video/mp4",
        "ExpectedBucketOwner": "222222222222", "ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"})


def part_params(number, first, last):
    return {"Bucket": "dst-bucket", "Key": "film.mp4", "UploadId": "upload-1", "PartNumber": number,
            "CopySource": {"Bucket": "src-bucket", "Key": "film.mp4"}, "CopySourceIfMatch": SOURCE_ETAG,
            "CopySourceRange": f"bytes={first}-{last}", "ExpectedBucketOwner": "222222222222",
            "ExpectedSourceBucketOwner": "111111111111"}


def expect_parts_and_completion(stubber, completion_answer, **completion_params):
    """The three parts' UploadPartCopy (5 MiB, 5 MiB and 2 MiB), then the CompleteMultipartUpload naming them,
    with ``completion_params`` besides those of every completion here, answered with ``completion_answer``."""
    ranges = [(1, 0, 5 * MiB - 1), (2, 5 * MiB, 10 * MiB - 1), (3, 10 * MiB, SIZE - 1)]
    for number, first, last in ranges:
        stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": f'"part{number}"'}},
                             part_params(number, first, last))
    stubber.add_response("complete_multipart_upload", completion_answer, {
        "Bucket": "dst-bucket", "Key": "film.mp4", "UploadId": "upload-1", "MpuObjectSize": SIZE,
        "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": f'"part{n}"'} for n, _, _ in ranges]},
        "ExpectedBucketOwner": "222222222222", "IfNoneMatch": "*", **completion_params})


def copy(client, row_options):
    with ThreadPoolExecutor(1) as parts:
        return ObjectCopier(client, row_options, parts).copy(ManifestRow("src-bucket", "film.mp4"))


def test_every_part_carries_copy_source_if_match_and_owners(client):
    stubber = Stubber(client)
    expect_heads(stubber)
    expect_create(stubber)
    expect_parts_and_completion(stubber, {"ETag": '"done-3"'})
    stubber.add_response("head_object", {**source_head(), "ETag": '"done-3"'}, {
        "Bucket": "dst-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "222222222222"})
    with stubber:
        result = copy(client, options())
    stubber.assert_no_pending_responses()
    assert result.status == SUCCEEDED, result.message
    assert result.message == "multipart copy, 3 parts; verified size"


def test_source_changed_mid_copy_fails_loudly_and_aborts_the_upload(client):
    stubber = Stubber(client)
    expect_heads(stubber)
    expect_create(stubber)
    stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": '"part1"'}}, part_params(1, 0, 5 * MiB - 1))
    stubber.add_client_error("upload_part_copy", "PreconditionFailed", "At least one of the pre-conditions you "
                             "specified did not hold", 412, expected_params=part_params(2, 5 * MiB, 10 * MiB - 1))
    stubber.add_response("abort_multipart_upload", {}, {
        "Bucket": "dst-bucket", "Key": "film.mp4", "UploadId": "upload-1", "ExpectedBucketOwner": "222222222222"})
    with stubber:
        result = copy(client, options(max_attempts=1))
    stubber.assert_no_pending_responses()
    assert (result.status, result.error_code) == (FAILED, "PreconditionFailed")
    assert "s3://src-bucket/film.mp4" in result.message and "source changed" in result.message


def test_throttling_is_retried_then_succeeds(client):
    stubber = Stubber(client)
    expect_heads(stubber, size=100)
    copy_params = {"Bucket": "dst-bucket", "Key": "film.mp4", "CopySource": {"Bucket": "src-bucket", "Key": "film.mp4"},
                   "CopySourceIfMatch": SOURCE_ETAG, "MetadataDirective": "COPY", "TaggingDirective": "COPY",
                   "ExpectedBucketOwner": "222222222222", "ExpectedSourceBucketOwner": "111111111111",
                   "IfNoneMatch": "*"}
    stubber.add_client_error("copy_object", "SlowDown", "Please reduce your request rate.", 503,
                             expected_params=copy_params)
    # second attempt: HEADs again (bucket existence is cached), then copies
    stubber.add_response("head_object", source_head(100), {
        "Bucket": "src-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "111111111111"})
    stubber.add_client_error("head_object", "404", http_status_code=404, expected_params={
        "Bucket": "dst-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "222222222222"})
    stubber.add_response("copy_object", {"CopyObjectResult": {"ETag": SOURCE_ETAG}}, copy_params)
    with stubber:
        result = copy(client, options())
    stubber.assert_no_pending_responses()
    assert result.status == SUCCEEDED, result.message
    assert result.message == "CopyObject; verified ETag (MD5) in the copy's response"


def test_throttling_that_outlasts_the_attempts_is_reported_temporary(client):
    stubber = Stubber(client)
    expect_heads(stubber, size=100)
    stubber.add_client_error("copy_object", "SlowDown", "Please reduce your request rate.", 503)
    with stubber:
        result = copy(client, options(max_attempts=1, throttled_attempts=0))
    assert (result.status, result.error_code, result.temporary) == (FAILED, "SlowDown", True)


def test_access_denied_is_permanent_with_a_hint(client):
    stubber = Stubber(client)
    stubber.add_client_error("head_object", "403", http_status_code=403, expected_params={
        "Bucket": "src-bucket", "Key": "film.mp4", "ChecksumMode": "ENABLED", "ExpectedBucketOwner": "111111111111"})
    with stubber:
        result = copy(client, options())
    stubber.assert_no_pending_responses()
    assert (result.status, result.error_code, result.temporary) == (FAILED, "AccessDenied", False)
    assert "s3://src-bucket/film.mp4" in result.message and "job role" in result.message


ANNOTATION = {"AnnotationName": "qc-report", "LastModified": WHEN, "Size": 12, "ETag": '"qc1"'}


def expect_annotation_sync(stubber, destination_etag, present=()):
    stubber.add_response("list_object_annotations", {"Annotations": list(present)},
                         {"Bucket": "dst-bucket", "Key": "film.mp4", "ExpectedBucketOwner": "222222222222"})
    stubber.add_response("list_object_annotations", {"Annotations": [ANNOTATION]},
                         {"Bucket": "src-bucket", "Key": "film.mp4"})
    if not present:
        stubber.add_response("get_object_annotation", {"AnnotationPayload": io.BytesIO(b'{"ok": true}')},
                             {"Bucket": "src-bucket", "Key": "film.mp4", "AnnotationName": "qc-report"})
        stubber.add_response("put_object_annotation", {}, {
            "Bucket": "dst-bucket", "Key": "film.mp4", "AnnotationName": "qc-report",
            "AnnotationPayload": b'{"ok": true}', "ObjectIfMatch": destination_etag,
            "ExpectedBucketOwner": "222222222222"})


def test_annotations_follow_a_multipart_copy_conditional_on_the_new_etag(client):
    stubber = Stubber(client)
    expect_heads(stubber, size=6 * MiB)
    expect_create(stubber)
    stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": '"p1"'}}, part_params(1, 0, 5 * MiB - 1))
    stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": '"p2"'}}, part_params(2, 5 * MiB, 6 * MiB - 1))
    stubber.add_response("complete_multipart_upload", {"ETag": '"new-2"'}, None)
    expect_annotation_sync(stubber, '"new-2"')
    stubber.add_response("head_object", {**source_head(6 * MiB), "ETag": '"new-2"'}, None)
    with stubber:
        result = copy(client, options(copy_annotations=True))
    stubber.assert_no_pending_responses()
    assert result.status == SUCCEEDED, result.message


def multipart_copy_already_there(stubber, present):
    stubber.add_response("head_object", source_head(6 * MiB), None)
    stubber.add_response("head_object", {**source_head(6 * MiB), "ETag": '"new-2"', "LastModified": WHEN.replace(year=2027)}, None)
    expect_annotation_sync(stubber, '"new-2"', present)


def test_a_rerun_completes_annotations_an_earlier_run_left_out(client):
    stubber = Stubber(client)
    multipart_copy_already_there(stubber, present=())
    with stubber:
        result = copy(client, options(copy_annotations=True))
    stubber.assert_no_pending_responses()
    assert result.status == SUCCEEDED
    assert result.message.endswith("copied 1 missing annotations") and result.bytes == 0


def test_a_rerun_with_annotations_in_place_skips(client):
    stubber = Stubber(client)
    multipart_copy_already_there(stubber, present=[ANNOTATION])
    with stubber:
        result = copy(client, options(copy_annotations=True))
    stubber.assert_no_pending_responses()
    assert result.status == SKIPPED


def test_an_endpoint_without_annotations_fails_the_row_permanently_with_a_hint(client):
    stubber = Stubber(client)
    stubber.add_response("head_object", source_head(6 * MiB), None)
    stubber.add_response("head_object", {**source_head(6 * MiB), "ETag": '"new-2"', "LastModified": WHEN.replace(year=2027)}, None)
    stubber.add_client_error("list_object_annotations", "NotImplemented", "not implemented", 501)
    with stubber:
        result = copy(client, options(copy_annotations=True))
    stubber.assert_no_pending_responses()
    assert (result.status, result.error_code, result.temporary) == (FAILED, "AnnotationCopyFailed", False)
    assert "holds the object's bytes but not all its annotations" in result.message
    assert "copy_annotations" in result.message


def test_kms_encrypted_copy_is_verified_by_size_with_a_head(client):
    """SSE-KMS ETags are not MD5s of the bytes: the copy's answer cannot prove its content, so the copier
    HEADs the copy and checks its size."""
    stubber = Stubber(client)
    stubber.add_response("head_object", source_head(100), None)
    stubber.add_client_error("head_object", "404", http_status_code=404)
    stubber.add_response("head_bucket", {}, None)
    stubber.add_response("copy_object", {"CopyObjectResult": {"ETag": '"kms-etag"'}, "ServerSideEncryption": "aws:kms"}, None)
    stubber.add_response("head_object", {**source_head(99), "ServerSideEncryption": "aws:kms"}, None)
    with stubber:
        result = copy(client, options(max_attempts=1, sse="aws:kms", sse_kms_key_id="alias/media"))
    stubber.assert_no_pending_responses()
    assert (result.status, result.error_code) == (FAILED, "VerificationFailed")
    assert "expected 100 bytes" in result.message and "found 99 bytes" in result.message


def test_destination_checksum_mismatch_fails_verification(client):
    stubber = Stubber(client)
    head = {**source_head(100), "ChecksumCRC64NVME": "AAAAAAAAAAA=", "ChecksumType": "FULL_OBJECT"}
    stubber.add_response("head_object", head, None)
    stubber.add_client_error("head_object", "404", http_status_code=404)
    stubber.add_response("head_bucket", {}, None)
    stubber.add_response("copy_object", {"CopyObjectResult": {"ETag": SOURCE_ETAG, "ChecksumCRC64NVME": "BBBBBBBBBBB="}}, None)
    with stubber:
        result = copy(client, options(max_attempts=1))
    assert (result.status, result.error_code) == (FAILED, "VerificationFailed")
    assert "CRC64NVME checksum differs" in result.message


@pytest.mark.parametrize("answered_checksum", ["AAAAAAAAAAA=", "BBBBBBBBBBB="])
def test_a_multipart_copy_is_verified_by_the_completions_full_object_checksum_without_a_head(client,
                                                                                           answered_checksum):
    """S3 completes an upload that states the source's full-object checksum and size only if the parts make
    them: its answer's checksum verifies the copy, and a differing one fails it, without a HEAD of the copy."""
    stubber = Stubber(client)
    checksum = {"ChecksumCRC64NVME": "AAAAAAAAAAA=", "ChecksumType": "FULL_OBJECT"}
    stubber.add_response("head_object", {**source_head(), **checksum}, None)
    stubber.add_client_error("head_object", "404", http_status_code=404)
    stubber.add_response("head_bucket", {}, None)
    expect_create(stubber)
    expect_parts_and_completion(
        stubber, {"ETag": '"done-3"', "ChecksumCRC64NVME": answered_checksum, "ChecksumType": "FULL_OBJECT"},
        **checksum)
    with stubber:
        result = copy(client, options(max_attempts=1))
    stubber.assert_no_pending_responses()
    if answered_checksum == checksum["ChecksumCRC64NVME"]:
        assert (result.status, result.message) == (SUCCEEDED, "multipart copy, 3 parts; verified size and "
                                                              "CRC64NVME at completion")
    else:
        assert (result.status, result.error_code) == (FAILED, "VerificationFailed")
        assert "CRC64NVME checksum differs" in result.message


def test_paced_throttled_attempts_retry_at_once_then_back_off_for_about_a_minute(client, monkeypatch):
    """Paced (a shard run's governor), the first throttled retries wait only for their turn; from ``max_attempts``
    on they back off, so an object throttled at every turn of a governor still above S3's rate does not run out of
    its throttled attempts in half a second."""
    monkeypatch.setattr("mxtransfer_worker.copier.random.uniform", lambda low, high: high)
    with ThreadPoolExecutor(1) as parts:
        copier = ObjectCopier(client, options(max_attempts=4, throttled_attempts=12), parts, paced=True)
        slow_down = CopyError("SlowDown", "copy: SlowDown", temporary=True)
        waits = [copier._backoff(attempt, slow_down) for attempt in range(1, 16)]
        assert copier._backoff(1, CopyError("InternalError", "copy: InternalError", temporary=True)) == 0.0  # base 0
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == PACED_BACKOFF_SECONDS
    assert waits == sorted(waits) and max(waits) == MAX_BACKOFF_SECONDS and 50 < sum(waits) < 150
