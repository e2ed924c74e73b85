"""HTTPS endpoints: the engine's native (awscrt) client checks certificates as its boto3 client does, against the CA
bundle the user gives (``verify``, ``AWS_CA_BUNDLE``...) or none with ``verify=False``; a certificate no trusted CA
signed is a permanent error that says what to set.

Runs against the S3 emulator (``benchmarks/s3emulator``) serving HTTPS with a self-signed certificate that no
system trust store holds: a private S3-compatible endpoint, or a network whose proxy signs with its own CA.
"""

from __future__ import annotations

import os
import sys
import uuid

import botocore.endpoint
import pytest
from botocore.exceptions import EndpointConnectionError, HTTPClientError, SSLError
from botocore.httpsession import DEFAULT_CA_BUNDLE

from mxtransfer_worker.crt_copy import CrtCopyClient
from mxtransfer_worker.errors import classify
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.s3client import REQUEST_MAX_ATTEMPTS, make_s3_client
from mxtransfer_worker.shard import run_shard

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402
from benchmarks.s3emulator.tls import self_signed  # noqa: E402

#: One object copied with CopyObject, one in three UploadPartCopy parts.
OBJECTS = {"clips/a b+c.mov": 4096, "masters/take 1.mxf": 15 * MiB}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_emulator(certificate, monkeypatch):
    """The emulator over HTTPS, with the machine's CA bundle settings out of the way."""
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0, **certificate) as instance:
        yield instance


def _copy_everything(emulator, client) -> tuple[dict, str]:
    stem = uuid.uuid4().hex[:8]
    source, destination, work = f"src-{stem}", f"dst-{stem}", f"work-{stem}"
    for bucket in (source, destination, work):
        emulator.create_bucket(bucket)
    emulator.put_virtual_objects(source, OBJECTS.items())
    upload_manifest(client, [ManifestRow(source, key) for key in OBJECTS], f"s3://{work}/manifest.csv")
    options = CopyOptions(destination_bucket=destination, multipart_threshold=8 * MiB, part_size=5 * MiB,
                          copy_annotations=False, native_client=True)
    return run_shard(client, f"s3://{work}/manifest.csv", options, f"s3://{work}/report/"), destination


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify=False's, as asked
@pytest.mark.parametrize("verify", ["bundle", False], ids=["CA bundle", "verify=False"])
def test_the_native_client_copies_over_https_with_the_boto3_clients_certificate_check(
        https_emulator, certificate, verify):
    assert https_emulator.url.startswith("https://")
    client = make_s3_client(endpoint_url=https_emulator.url, verify=certificate["tls_cert"] if verify else False)

    summary, destination = _copy_everything(https_emulator, client)

    assert (summary["succeeded"], summary["failed"]) == (len(OBJECTS), 0), summary
    for key, size in OBJECTS.items():
        assert client.head_object(Bucket=destination, Key=key)["ContentLength"] == size


def test_the_ca_bundle_of_the_environment_reaches_the_native_client(https_emulator, certificate, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", certificate["tls_cert"])
    client = make_s3_client(endpoint_url=https_emulator.url)

    summary, _ = _copy_everything(https_emulator, client)

    assert (summary["succeeded"], summary["failed"]) == (len(OBJECTS), 0), summary



def test_the_native_client_refuses_a_certificate_its_ca_bundle_does_not_hold(https_emulator):
    # the boto3 client would refuse it too, but only after botocore's 10 attempts (about 80 s); the native client
    # tells after awscrt's TLS library (s2n) has waited out its 10-30 s blinding delay
    https_emulator.create_bucket("src")
    https_emulator.put_virtual_object("src", "a", 4096)
    client = make_s3_client(endpoint_url=https_emulator.url, verify=DEFAULT_CA_BUNDLE)

    with pytest.raises(HTTPClientError, match="CopyObject: AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE"):
        CrtCopyClient(client, 1).copy_object(Bucket="src", Key="b", CopySource={"Bucket": "src", "Key": "a"})


def test_a_certificate_no_trusted_ca_signed_fails_at_once_as_a_permanent_error_naming_the_cause(https_emulator):
    client = make_s3_client(endpoint_url=https_emulator.url, region_name="us-east-1")
    attempts = []
    client.meta.events.register("before-send.s3", lambda **kwargs: attempts.append(1))
    with pytest.raises(SSLError) as raised:
        client.head_object(Bucket="src", Key="a")

    error = classify(raised.value, "copy s3://src/a")

    assert len(attempts) == 1  # botocore tried it 11 times (about a minute) before the engine saw it
    assert (error.code, error.temporary) == ("UntrustedCertificate", False)
    assert error.message.startswith("copy s3://src/a: SSL validation failed for https://127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in error.message and "give its CA bundle" in error.message


def test_botocore_still_retries_what_a_retry_can_help(monkeypatch):
    # nothing listens on the port: a connection error, temporary, which botocore's standard retries go on with
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)  # its backoffs, not its attempts
    client = make_s3_client(endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    attempts = []
    client.meta.events.register("before-send.s3", lambda **kwargs: attempts.append(1))
    with pytest.raises(EndpointConnectionError):
        client.head_object(Bucket="src", Key="a")
    assert len(attempts) == 1 + REQUEST_MAX_ATTEMPTS  # botocore's max_attempts counts the retries
