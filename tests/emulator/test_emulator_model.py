"""The timing, throttling and fault model: unit checks of its arithmetic and what clients see through boto3."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from benchmarks.s3emulator import DEFAULT_ACCOUNT, EmulatorConfig
from benchmarks.s3emulator.model import READ, WRITE, FaultInjector, RateLimiter
from conftest import MiB, make_client, pipelined


def test_copy_delay_is_size_over_bandwidth():
    assert EmulatorConfig(copy_bandwidth=90e6).copy_delay(180_000_000) == 2.0
    assert EmulatorConfig(copy_bandwidth=0).copy_delay(10**15) == 0.0


def test_access_keys_map_to_accounts():
    config = EmulatorConfig(accounts={"ops-key": "999988887777"})
    assert config.account_for("ops-key") == "999988887777"
    assert config.account_for("AKIA111122223333XYZ") == "111122223333"
    assert config.account_for("testing") == config.account_for(None) == DEFAULT_ACCOUNT


def test_token_bucket_per_prefix_and_class():
    config = EmulatorConfig(write_rate=2, read_rate=4, rate_burst_s=1)
    limiter = RateLimiter()
    assert [limiter.allow(config, "b", "p/x", WRITE, 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(config, "b", "q/x", WRITE, 0.0)  # another prefix has its own bucket
    assert limiter.allow(config, "b", "p/y", READ, 0.0)  # and reads their own ceiling
    assert not limiter.allow(config, "b", "p/z", WRITE, 0.2)
    assert limiter.allow(config, "b", "p/z", WRITE, 0.5)  # refilled at 2 per second
    assert limiter.allow(EmulatorConfig(write_rate=0), "b", "p/x", WRITE, 0.0)


def test_fault_draws_are_seeded_and_limited_to_chosen_operations():
    config = EmulatorConfig(fault_500_rate=0.3, fault_reset_rate=0.2, fault_200_error_rate=0.2)
    one, two = FaultInjector(7), FaultInjector(7)
    sequence = [one.draw(config, "CopyObject") for _ in range(200)]
    assert sequence == [two.draw(config, "CopyObject") for _ in range(200)]
    assert {"500", "reset", "200-error", None} == set(sequence)
    assert "200-error" not in {one.draw(config, "HeadObject") for _ in range(200)}  # only copies answer 200-with-error
    only_parts = config.replace(fault_operations=frozenset({"UploadPartCopy"}))
    assert {one.draw(only_parts, "CopyObject") for _ in range(50)} == {None}


@pytest.fixture
def loaded(fresh_emulator):
    fresh_emulator.create_bucket("bkt")
    fresh_emulator.put_virtual_object("bkt", "p/src", 10 * MiB)
    fresh_emulator.put_virtual_object("bkt", "q/src", 10 * MiB)
    return fresh_emulator


def test_request_rate_ceiling_answers_slow_down_per_prefix(loaded):
    loaded.configure(read_rate=5.0)
    results = pipelined(loaded.url, [("GET", "/bkt/p/src", {"Range": "bytes=0-0"})] * 20)
    statuses = [status for status, _ in results]
    assert statuses.count(206) >= 5 and statuses.count(503) >= 10
    assert all(b"<Code>SlowDown</Code>" in body for status, body in results if status == 503)
    assert pipelined(loaded.url, [("HEAD", "/bkt/q/src", {})])[0][0] == 200
    assert loaded.stats()["errors"]["SlowDown"] == statuses.count(503)


def test_injected_internal_error(loaded):
    loaded.configure(fault_500_rate=1.0)
    with pytest.raises(ClientError) as caught:
        make_client(loaded.url).head_object(Bucket="bkt", Key="p/src")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_injected_slow_down_whatever_the_ceilings(loaded):
    loaded.configure(fault_slowdown_rate=1.0, write_rate=0, read_rate=0)
    with pytest.raises(ClientError) as caught:
        make_client(loaded.url).head_object(Bucket="bkt", Key="p/src")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert set(loaded.stats()["faults"]) == {"503"}


def test_injected_connection_reset(loaded):
    loaded.configure(fault_reset_rate=1.0, fault_operations=frozenset({"CopyObject"}))
    client = make_client(loaded.url)
    assert client.head_object(Bucket="bkt", Key="p/src")["ContentLength"] == 10 * MiB
    with pytest.raises(ConnectionClosedError):
        client.copy_object(Bucket="bkt", Key="p/dst", CopySource="bkt/p/src")
    assert loaded.stats()["faults"]["reset"] >= 1


def test_injected_hang_until_client_timeout(loaded):
    loaded.configure(fault_hang_rate=1.0)
    client = make_client(loaded.url, read_timeout=0.3, connect_timeout=1)
    with pytest.raises(ReadTimeoutError):
        client.head_object(Bucket="bkt", Key="p/src")


def test_injected_200_with_error_body_on_copy(loaded):
    loaded.configure(fault_200_error_rate=1.0)
    with pytest.raises(ClientError) as caught:
        make_client(loaded.url).copy_object(Bucket="bkt", Key="p/dst", CopySource="bkt/p/src")
    assert caught.value.response["Error"]["Code"] == "InternalError"


def test_retrying_client_gets_through_seeded_faults(loaded):
    loaded.configure(fault_500_rate=0.2, fault_reset_rate=0.1, fault_200_error_rate=0.1)
    client = make_client(loaded.url, retries={"mode": "standard", "max_attempts": 10})
    for index in range(20):
        client.copy_object(Bucket="bkt", Key=f"p/copy-{index}", CopySource="bkt/p/src")
    loaded.configure(fault_500_rate=0.0, fault_reset_rate=0.0, fault_200_error_rate=0.0)
    assert client.list_objects_v2(Bucket="bkt", Prefix="p/copy-")["KeyCount"] == 20
    assert sum(loaded.stats()["faults"].values()) > 0


def test_long_copy_sends_200_early_then_its_result(loaded):
    loaded.configure(copy_bandwidth=50e6, copy_keepalive_s=0.05)
    result = make_client(loaded.url).copy_object(Bucket="bkt", Key="p/dst", CopySource="bkt/p/src")
    assert result["CopyObjectResult"]["ETag"] == make_client(loaded.url).head_object(Bucket="bkt", Key="p/src")["ETag"]
    status, body = pipelined(loaded.url, [("PUT", "/bkt/p/dst2", {"x-amz-copy-source": "bkt/p/src"})])[0]
    declaration, _, rest = body.partition(b"?>")
    assert status == 200 and declaration.startswith(b"<?xml") and rest.lstrip().startswith(b"<CopyObjectResult")
    assert rest.startswith(b"\n ")  # keep-alive spaces came before the result


def test_failure_after_an_early_200_is_an_error_body(loaded):
    loaded.configure(copy_bandwidth=10 * MiB, copy_keepalive_s=0.05)  # a 10 MiB part copy takes 1 s
    client = make_client(loaded.url)
    upload_id = client.create_multipart_upload(Bucket="bkt", Key="p/mp")["UploadId"]
    request = ("PUT", f"/bkt/p/mp?partNumber=1&uploadId={upload_id}", {"x-amz-copy-source": "bkt/p/src"})
    outcome = []
    worker = threading.Thread(target=lambda: outcome.extend(pipelined(loaded.url, [request])))
    worker.start()
    while loaded.stats()["operations"].get("UploadPartCopy", 0) == 0:
        time.sleep(0.01)
    client.abort_multipart_upload(Bucket="bkt", Key="p/mp", UploadId=upload_id)
    worker.join()
    status, body = outcome[0]
    assert status == 200 and b"<Error><Code>NoSuchUpload</Code>" in body
