"""CompleteMultipartUpload bodies built by ``completion`` instead of botocore's validator and serializer: the same
bytes, sent to a real server, on every retry."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ParamValidationError
from botocore.serialize import create_serializer

from mxtransfer_worker import completion
from mxtransfer_worker.completion import build_completions_here, parts_body
from mxtransfer_worker.copier import SUCCEEDED, ObjectCopier
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.s3client import make_s3_client

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402

PARTS = [
    {"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"', "ChecksumCRC64NVME": "AAAAAAAAAAA="},
    {"ETag": '"odd<&>etag"', "PartNumber": 2, "ChecksumSHA256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
    {"PartNumber": 10000, "ETag": '"last"'},
]


def _botocore_body(client, parts: list[dict]) -> bytes:
    model = client.meta.service_model.operation_model("CompleteMultipartUpload")
    args = {"Bucket": "b", "Key": "k", "UploadId": "u", "MultipartUpload": {"Parts": parts}}
    return create_serializer("rest-xml").serialize_to_request(args, model)["body"]


def test_the_body_is_byte_for_byte_what_botocore_writes():
    client = make_s3_client(endpoint_url="http://127.0.0.1:9")
    model = client.meta.service_model.operation_model("CompleteMultipartUpload")
    assert parts_body(PARTS, model) == _botocore_body(client, PARTS)
    assert b"<ETag>\"odd&lt;&amp;&gt;etag\"</ETag>" in parts_body(PARTS, model)


def test_a_part_field_botocore_does_not_know_or_of_another_type_is_refused_by_name():
    client = make_s3_client(endpoint_url="http://127.0.0.1:9")
    model = client.meta.service_model.operation_model("CompleteMultipartUpload")
    with pytest.raises(ParamValidationError, match=r'Parts\[1\]: "Size"'):
        parts_body([{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b"', "Size": 5}], model)
    for part, field in (({"PartNumber": 1, "ETag": None}, "ETag"), ({"PartNumber": "1", "ETag": '"a"'}, "PartNumber"),
                        ({"PartNumber": True, "ETag": '"a"'}, "PartNumber")):
        invalid = rf"Invalid type for parameter MultipartUpload\.Parts\[0\]\.{field}"
        with pytest.raises(ParamValidationError, match=invalid):
            parts_body([part], model)


def _copied_parts(client, bucket: str, key: str, upload_id: str) -> list[dict]:
    parts = []
    for number, byte_range in ((1, f"bytes=0-{5 * MiB - 1}"), (2, f"bytes={5 * MiB}-{6 * MiB - 1}")):
        answer = client.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                         CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange=byte_range)
        parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
    return parts


def _sent_bodies(client) -> list[bytes]:
    bodies: list[bytes] = []
    client.meta.events.register("before-send.s3.CompleteMultipartUpload",
                                lambda request, **_: bodies.append(bytes(request.body)))
    return bodies


def test_a_real_server_completes_the_upload_from_the_body_and_the_callers_arguments_stay_whole(s3, make_bucket,
                                                                                             monkeypatch):
    built = []
    monkeypatch.setattr(completion, "parts_body", lambda parts, model: built.append(parts) or parts_body(parts, model))
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="source", Body=os.urandom(6 * MiB))
    client = make_s3_client(endpoint_url=s3.meta.endpoint_url)
    build_completions_here(client)
    build_completions_here(client)  # a second copier on the same client: still one body
    sent = _sent_bodies(client)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="copy")["UploadId"]
    parts = _copied_parts(client, bucket, "copy", upload_id)
    args = {"Bucket": bucket, "Key": "copy", "UploadId": upload_id, "MultipartUpload": {"Parts": parts}}

    client.complete_multipart_upload(**args)

    assert built == [parts], "built once, by this module"
    assert sent == [_botocore_body(client, parts)]
    assert args["MultipartUpload"]["Parts"] == parts
    copy = s3.head_object(Bucket=bucket, Key="copy")
    assert copy["ContentLength"] == 6 * MiB and copy["ETag"].endswith('-2"')


def test_each_retry_sends_the_same_body():
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0, seed=5) as emulator:
        emulator.create_bucket("b")
        emulator.put_virtual_object("b", "source", 6 * MiB)
        client = make_s3_client(endpoint_url=emulator.url)
        build_completions_here(client)
        sent = _sent_bodies(client)
        upload_id = client.create_multipart_upload(Bucket="b", Key="copy")["UploadId"]
        parts = _copied_parts(client, "b", "copy", upload_id)
        emulator.configure(fault_500_rate=0.7, fault_operations=frozenset({"CompleteMultipartUpload"}))

        client.complete_multipart_upload(Bucket="b", Key="copy", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})

        assert len(sent) >= 2, "the emulator answered the first completion with 500, which botocore retries"
        assert set(sent) == {_botocore_body(client, parts)}
        emulator.configure(fault_500_rate=0.0)
        assert client.head_object(Bucket="b", Key="copy")["ContentLength"] == 6 * MiB


def test_the_copier_completes_its_multipart_copies_with_this_body(s3, make_bucket, monkeypatch):
    built = []
    monkeypatch.setattr(completion, "parts_body", lambda parts, model: built.append(parts) or parts_body(parts, model))
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="film.mov", Body=os.urandom(12 * MiB))
    options = CopyOptions(destination_bucket=destination, multipart_threshold=8 * MiB, part_size=5 * MiB,
                          copy_annotations=False)
    with ThreadPoolExecutor(4) as part_threads:
        result = ObjectCopier(make_s3_client(endpoint_url=s3.meta.endpoint_url), options,
                              part_threads).copy(ManifestRow(source, "film.mov"))

    assert result.status == SUCCEEDED, result.message
    assert [[part["PartNumber"] for part in parts] for parts in built] == [[1, 2, 3]]
