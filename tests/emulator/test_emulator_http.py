"""The HTTP layer as other clients use it: aws-chunked bodies with trailers, Expect: 100-continue, virtual-host
addressing; and the command-line entry points (server and self-benchmark)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import zlib
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conftest import make_client

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def raw_exchange(url: str, head: str, body: bytes = b"", expect_continue: bool = False) -> tuple[int, bytes]:
    """Send one request by hand; with ``expect_continue`` wait for the interim 100 before sending the body."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(head.encode())
        stream = sock.makefile("rb")
        if expect_continue:
            assert stream.readline().startswith(b"HTTP/1.1 100")
            assert stream.readline() == b"\r\n"
        sock.sendall(body)
        status = int(stream.readline().split()[1])
        length = 0
        while (line := stream.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, stream.read(length)


def aws_chunked(data: bytes, trailer: str) -> bytes:
    """``data`` framed as aws-chunked (two chunks, then the trailer) inside HTTP chunked framing, as botocore sends."""
    inner = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (data[:5], data[5:])) + b"0\r\n" + trailer.encode() + b"\r\n\r\n"
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)


@pytest.mark.parametrize("valid", [True, False])
def test_aws_chunked_body_with_trailing_checksum(emulator, emu_bucket, valid):
    data = b"hello aws-chunked world"
    checksum = base64.b64encode(zlib.crc32(data if valid else b"other").to_bytes(4, "big")).decode()
    head = (f"PUT /{emu_bucket}/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Encoding: aws-chunked\r\n"
            f"x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\nx-amz-trailer: x-amz-checksum-crc32\r\n"
            f"x-amz-decoded-content-length: {len(data)}\r\n\r\n")
    status, body = raw_exchange(emulator.url, head, aws_chunked(data, f"x-amz-checksum-crc32:{checksum}"))
    client = make_client(emulator.url)
    if valid:
        assert status == 200
        assert client.get_object(Bucket=emu_bucket, Key="chunked")["Body"].read() == data
        assert client.head_object(Bucket=emu_bucket, Key="chunked", ChecksumMode="ENABLED")["ChecksumCRC32"] == checksum
    else:
        assert status == 400 and b"<Code>BadDigest</Code>" in body


def test_boto3_default_checksums_round_trip(emulator, emu_bucket):
    client = make_client(emulator.url, request_checksum_calculation="when_supported", response_checksum_validation="when_supported")
    body = os.urandom(2 * 1024 * 1024)
    put = client.put_object(Bucket=emu_bucket, Key="k", Body=body)
    assert client.get_object(Bucket=emu_bucket, Key="k")["Body"].read() == body  # boto3 validates the checksum
    assert client.head_object(Bucket=emu_bucket, Key="k", ChecksumMode="ENABLED")["ChecksumCRC32"] == put["ChecksumCRC32"]


def test_expect_100_continue(emulator, emu_bucket):
    head = f"PUT /{emu_bucket}/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    assert raw_exchange(emulator.url, head, b"data", expect_continue=True)[0] == 200
    assert make_client(emulator.url).get_object(Bucket=emu_bucket, Key="expect")["Body"].read() == b"data"


def test_virtual_host_addressing(emulator, emu_bucket):
    make_client(emulator.url).put_object(Bucket=emu_bucket, Key="dir/v", Body=b"vhost")
    port = urlsplit(emulator.url).port
    assert raw_exchange(emulator.url, f"GET /dir/v HTTP/1.1\r\nHost: {emu_bucket}.127.0.0.1:{port}\r\n\r\n") == (200, b"vhost")
    status, listing = raw_exchange(emulator.url, f"GET /?list-type=2 HTTP/1.1\r\nHost: {emu_bucket}.localhost\r\n\r\n")
    assert status == 200 and b"<Key>dir/v</Key>" in listing


def test_unsupported_subresources_say_so(emulator, emu_bucket):
    status, body = raw_exchange(emulator.url, f"GET /{emu_bucket}?acl HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body


def test_command_line_server(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.s3emulator", "--port", "0", "--latency-ms", "1",
         "--bucket", "media=111122223333", "--populate", "media/reels/:3:2T"],
        cwd=_REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        listed = make_client(url).list_objects_v2(Bucket="media", ExpectedBucketOwner="111122223333")
        assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [(f"reels/00000{i}", 2 * 1024**4) for i in range(3)]
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_self_benchmark_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.s3emulator.selfbench", "--seconds", "0.3", "--connections", "4"],
                            cwd=_REPO, capture_output=True, text=True, timeout=60, check=True)
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("HeadObject:") and "statuses {200:" in line for line in lines)
    assert any(line.strip().startswith("CopyObject:") and "statuses {200:" in line for line in lines)
    assert any(line.strip().startswith("UploadPartCopy, a new connection each:") and "statuses {200:" in line for line in lines)


def test_an_xml_body_larger_than_the_object_bytes_kept_is_parsed(fresh_emulator):
    # CompleteMultipartUpload of 10,000 parts with checksums is over 1 MiB, the object bytes this emulator keeps
    client, bucket = make_client(fresh_emulator.url), "complete-xml"
    fresh_emulator.create_bucket(bucket)
    fresh_emulator.put_virtual_object(bucket, "src", 6 * 2**20)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    etag = client.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                                   CopySource=f"{bucket}/src")["CopyPartResult"]["ETag"]
    missing = [{"PartNumber": number, "ETag": f'"{number:032x}"', "ChecksumCRC64NVME": "AAAAAAAAAAA="}
               for number in range(2, 10_001)]
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}, *missing]})
    assert (refused.value.response["Error"]["Code"], refused.value.response["Error"]["PartNumber"]) == ("InvalidPart", "2")
