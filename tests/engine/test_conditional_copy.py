"""The one-request copy of a listed small object (``If-None-Match: *`` on CopyObject) and its refusals.

The S3 emulator honours ``If-None-Match``/``If-Match`` on CopyObject as S3 does, so these run there, through the
engine's awscrt copy client. moto 5.2.5 ignores the header: on moto the engine must keep the destination HEAD,
which the last tests check.
"""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from mxtransfer_worker.copier import FAILED, SKIPPED, SUCCEEDED, ObjectCopier
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.runner import copy_rows
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.throttle import AimdRate, RequestGovernor

from benchmarks.s3emulator import S3Emulator

ONE_REQUEST = "CopyObject; verified ETag (MD5) in the copy's response"


@pytest.fixture(scope="module")
def emulator():
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0) as instance:
        yield instance


@pytest.fixture
def buckets(emulator, request):
    source, destination = f"src-{id(request)}", f"dst-{id(request)}"
    emulator.create_bucket(source)
    emulator.create_bucket(destination)
    return source, destination


def listed_rows(client, bucket: str) -> list[ManifestRow]:
    """The source's rows as the inventory writes them: with the listing's size and ETag."""
    return [ManifestRow(bucket, item["Key"], size=item["Size"], etag=item["ETag"])
            for item in client.list_objects_v2(Bucket=bucket)["Contents"]]


def run(client, rows, options) -> dict:
    results = []
    copy_rows(client, rows, options, results.append)
    return {result.row.key: result for result in results}


def operations(emulator) -> dict:
    return dict(emulator.stats()["operations"])


def requests_since(emulator, before: dict) -> dict:
    return {name: count - before.get(name, 0) for name, count in operations(emulator).items()
            if count != before.get(name, 0)}


def test_listed_small_objects_are_copied_with_one_request_each_and_verified(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    for index in range(20):
        client.put_object(Bucket=source, Key=f"clip {index}.mov", Body=os.urandom(100 + index),
                          Metadata={"take": str(index)}, ContentType="video/quicktime")
    client.put_object_tagging(Bucket=source, Key="clip 0.mov", Tagging={"TagSet": [{"Key": "rights", "Value": "eu"}]})
    rows = listed_rows(client, source)
    before = operations(emulator)
    results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                            copy_annotations=False))
    assert {result.status for result in results.values()} == {SUCCEEDED}
    assert {result.message for result in results.values()} == {ONE_REQUEST}
    assert requests_since(emulator, before) == {"CopyObject": 20}
    for index in range(20):
        key = f"clip {index}.mov"
        copied = client.get_object(Bucket=destination, Key=key)
        assert copied["Body"].read() == client.get_object(Bucket=source, Key=key)["Body"].read()
        assert (copied["Metadata"], copied["ContentType"]) == ({"take": str(index)}, "video/quicktime")
    assert client.get_object_tagging(Bucket=destination, Key="clip 0.mov")["TagSet"] == [
        {"Key": "rights", "Value": "eu"}]


def test_rerun_skips_identical_refuses_differing_and_leaves_them_untouched(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket=source, Key="same.wav", Body=b"same bytes")
    client.put_object(Bucket=source, Key="differs.wav", Body=b"the source's bytes")
    client.copy_object(Bucket=destination, Key="same.wav", CopySource={"Bucket": source, "Key": "same.wav"})
    client.put_object(Bucket=destination, Key="differs.wav", Body=b"someone else's")
    rows = listed_rows(client, source)
    before = operations(emulator)
    results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                            copy_annotations=False))
    # each row: the refused conditional copy, then a HEAD of each side to tell skip from refuse
    assert requests_since(emulator, before) == {"CopyObject": 2, "HeadObject": 4}
    assert (results["same.wav"].status, results["same.wav"].message) == (
        SKIPPED, "destination already matches (same size and CRC64NVME)")
    assert (results["differs.wav"].status, results["differs.wav"].error_code) == (FAILED, "DestinationExists")
    assert client.get_object(Bucket=destination, Key="differs.wav")["Body"].read() == b"someone else's"


def test_overwrite_replaces_a_differing_destination_after_the_refusal(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket=source, Key="a.mxf", Body=b"new")
    client.put_object(Bucket=destination, Key="a.mxf", Body=b"old and longer")
    results = run(client, listed_rows(client, source), CopyOptions(
        destination_bucket=destination, conditional_copy=True, overwrite=True, copy_annotations=False))
    assert results["a.mxf"].status == SUCCEEDED, results["a.mxf"].message
    assert client.get_object(Bucket=destination, Key="a.mxf")["Body"].read() == b"new"


def test_source_changed_since_the_listing_is_copied_as_it_is_now_and_verified(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket=source, Key="edit.mov", Body=b"first cut")
    rows = listed_rows(client, source)
    client.put_object(Bucket=source, Key="edit.mov", Body=b"final cut, longer")
    results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                            copy_annotations=False))
    assert results["edit.mov"].status == SUCCEEDED, results["edit.mov"].message
    assert client.get_object(Bucket=destination, Key="edit.mov")["Body"].read() == b"final cut, longer"
    assert results["edit.mov"].bytes == len(b"final cut, longer")


def test_missing_listed_source_fails_its_row_clearly(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    row = ManifestRow(source, "gone.mov", size=5, etag='"0123456789abcdef0123456789abcdef"')
    results = run(client, [row], CopyOptions(destination_bucket=destination, conditional_copy=True,
                                             copy_annotations=False, max_attempts=1))
    assert (results["gone.mov"].status, results["gone.mov"].error_code, results["gone.mov"].temporary) == (
        FAILED, "NoSuchKey", False)
    assert f"s3://{source}/gone.mov" in results["gone.mov"].message


def test_conditional_copy_defaults_to_aws_endpoints_only(s3_server):
    options = CopyOptions(destination_bucket="dst", copy_annotations=False)
    aws = boto3.session.Session().client("s3", region_name="eu-west-1",
                                         endpoint_url="https://s3.eu-west-1.amazonaws.com")  # never contacted
    assert ObjectCopier(aws, options, None).conditional_copy is True
    assert ObjectCopier(make_s3_client(endpoint_url=s3_server), options, None).conditional_copy is False


def test_on_moto_which_ignores_if_none_match_a_differing_destination_is_still_refused(s3, make_bucket):
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="take.mov", Body=b"source")
    s3.put_object(Bucket=destination, Key="take.mov", Body=b"destination")
    results = run(s3, listed_rows(s3, source), CopyOptions(destination_bucket=destination, copy_annotations=False))
    assert (results["take.mov"].status, results["take.mov"].error_code) == (FAILED, "DestinationExists")
    assert s3.get_object(Bucket=destination, Key="take.mov")["Body"].read() == b"destination"


def test_requests_of_the_native_copy_client_are_governed_and_counted(emulator, buckets):
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    for index in range(3):
        client.put_object(Bucket=source, Key=f"k{index}", Body=b"x")
    rows = listed_rows(client, source)
    turns = []

    class CountedTurns(AimdRate):
        def acquire(self) -> None:
            turns.append(1)
            super().acquire()

    governor = RequestGovernor(CountedTurns())
    governor.attach(client)
    try:
        results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                                copy_annotations=False))
    finally:
        governor.detach(client)
    assert {result.message for result in results.values()} == {ONE_REQUEST}
    assert governor.counts()["requests"] == 3 == len(turns)


@pytest.mark.parametrize("long_copy_bytes, most_in_flight", [(0, 6), (1 << 30, 2)], ids=["long", "short"])
def test_long_one_request_copies_have_a_window_of_their_own(emulator, buckets, monkeypatch, long_copy_bytes,
                                                            most_in_flight):
    """Copies of large objects take no thread and stream for long: they fill ``SENT_COPIES`` (a 50 MiB proxy must
    not wait for a place among ``object_concurrency`` rows), never more; short ones stay within
    ``object_concurrency``."""
    import mxtransfer_worker.crt_copy as crt_copy
    import mxtransfer_worker.runner as runner

    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    for index in range(30):
        client.put_object(Bucket=source, Key=f"proxy {index}.mp4", Body=b"p" * index)
    rows = listed_rows(client, source)
    monkeypatch.setattr(runner, "SENT_COPIES", 6)
    monkeypatch.setattr(runner, "LONG_COPY_BYTES", long_copy_bytes)
    in_flight, most = [0], [0]
    send = crt_copy.CrtCopyClient.send

    def counted_send(self, method, args, on_done=None):
        def done(answer):
            in_flight[0] -= 1
            on_done(answer)
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        return send(self, method, args, done)

    monkeypatch.setattr(crt_copy.CrtCopyClient, "send", counted_send)
    emulator.configure(latency_s=0.3)  # every copy is still in flight when the next rows are sent
    try:
        results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                                copy_annotations=False, object_concurrency=2))
    finally:
        emulator.configure(latency_s=0.0)
    assert {result.message for result in results.values()} == {ONE_REQUEST} and len(results) == 30
    assert most[0] == most_in_flight


def test_slow_down_to_the_native_client_is_a_throttle_retried_until_the_copy_succeeds(emulator, buckets):
    """The native client does not retry (``crt_copy``): awscrt's error for a SlowDown is S3's SlowDown, which the
    request governor must see and the engine must retry beyond ``max_attempts`` (here 1),
    with a budget of its own for throttling, until S3 lets the copy through (here: the emulator stops throttling
    once it has thrown)."""
    source, destination = buckets
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket=source, Key="k", Body=b"x")
    rows = listed_rows(client, source)
    governor = RequestGovernor(AimdRate())
    governor.attach(client)

    def calm_down_after_a_throttle(parsed_response=None, **_):
        if ((parsed_response or {}).get("Error") or {}).get("Code") == "SlowDown":
            emulator.configure(fault_slowdown_rate=0.0)

    client.meta.events.register("response-received.s3.CopyObject", calm_down_after_a_throttle)
    emulator.configure(fault_slowdown_rate=1.0)
    try:
        results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                                copy_annotations=False, max_attempts=1))
    finally:
        emulator.configure(fault_slowdown_rate=0.0)
        governor.detach(client)
    assert (results["k"].status, results["k"].message) == (SUCCEEDED, ONE_REQUEST)
    assert governor.counts()["throttled_requests"] >= 1  # one throttle: too few to lower the rate (AimdRate)


def test_a_one_request_copy_unanswered_at_the_read_timeout_is_cancelled_and_retried(emulator, buckets):
    """The rows' thread sends one-request copies without waiting on them: one that outlives the client's read
    timeout is cancelled (``ReadTimeoutError``, temporary), retried on an object thread, and ends verified (copied
    by the retry, or found there already if the emulator finished the cancelled copy meanwhile)."""
    source, destination = buckets
    client = boto3.client("s3", endpoint_url=emulator.url, config=Config(
        read_timeout=0.5, s3={"addressing_style": "path"}, request_checksum_calculation="when_required"))
    client.put_object(Bucket=source, Key="k", Body=b"x")
    rows = listed_rows(client, source)
    timed_out = []

    def answer_again_after_a_timeout(exception=None, **_):
        if isinstance(exception, ReadTimeoutError):
            timed_out.append(exception)
            emulator.configure(latency_s=0.0)

    client.meta.events.register("response-received.s3.CopyObject", answer_again_after_a_timeout)
    emulator.configure(latency_s=5.0)
    try:
        results = run(client, rows, CopyOptions(destination_bucket=destination, conditional_copy=True,
                                                copy_annotations=False, max_attempts=2, retry_base_delay=0.01))
    finally:
        emulator.configure(latency_s=0.0)
    assert len(timed_out) == 1
    assert results["k"].status in (SUCCEEDED, SKIPPED), results["k"].message
    assert client.get_object(Bucket=destination, Key="k")["Body"].read() == b"x"
