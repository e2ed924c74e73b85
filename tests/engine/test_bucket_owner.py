"""Bucket sniping: a bucket of the expected name but another owner must not be read from or written to.

moto 5.2.5 ignores ``ExpectedBucketOwner``, so these copies run against the S3 emulator, which answers a
mismatched owner with 403 AccessDenied as S3 does. Each case runs twice: the classic path (boto3, HEADs first)
and the one-request path (a listed row, a conditional CopyObject through the awscrt copy client).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from mxtransfer_worker.copier import FAILED, SUCCEEDED, ObjectCopier
from mxtransfer_worker.crt_copy import CrtCopyClient
from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3client import make_s3_client

from benchmarks.s3emulator import S3Emulator

OURS, THEIRS, SNIPER = "111111111111", "222222222222", "999999999999"


@pytest.fixture(scope="module")
def emulator():
    with S3Emulator() as instance:
        instance.create_bucket("provider-exchange", account=THEIRS)
        instance.create_bucket("our-library", account=OURS)
        instance.create_bucket("sniped-exchange", account=SNIPER)
        instance.create_bucket("sniped-library", account=SNIPER)
        for bucket in ("provider-exchange", "sniped-exchange"):
            instance.put_virtual_object(bucket, "film.mov", 1024)
        yield instance


@pytest.fixture(params=["classic", "one request"])
def one_request(request) -> bool:
    return request.param == "one request"


def prefix(one_request: bool) -> str:
    return "one-request/" if one_request else "classic/"


def copy(emulator, source_bucket, destination_bucket, one_request):
    options = CopyOptions(destination_bucket=destination_bucket, expected_source_owner=THEIRS,
                          expected_destination_owner=OURS, copy_annotations=False, max_attempts=1,
                          conditional_copy=one_request, destination_prefix=prefix(one_request))
    client = make_s3_client(endpoint_url=emulator.url)
    row = ManifestRow(source_bucket, "film.mov")
    copy_client = None
    if one_request:
        row = ManifestRow(source_bucket, "film.mov", size=1024, etag=client.head_object(Bucket=source_bucket,
                                                                                        Key="film.mov")["ETag"])
        copy_client = CrtCopyClient(client, 4)
    with ThreadPoolExecutor(2) as parts:
        return ObjectCopier(client, options, parts, copy_client=copy_client).copy(row)


def test_copy_between_the_expected_owners_succeeds(emulator, one_request):
    result = copy(emulator, "provider-exchange", "our-library", one_request)
    assert result.status == SUCCEEDED, result.message


@pytest.mark.parametrize("source, destination", [("sniped-exchange", "our-library"),
                                                 ("provider-exchange", "sniped-library")])
def test_a_bucket_owned_by_another_account_is_refused(emulator, source, destination, one_request):
    result = copy(emulator, source, destination, one_request)
    assert (result.status, result.error_code, result.temporary) == (FAILED, "AccessDenied", False)
    assert "sniped-" in result.message
    if destination.startswith("sniped-"):
        with pytest.raises(ClientError) as missing:
            make_s3_client(endpoint_url=emulator.url).head_object(Bucket=destination,
                                                                  Key=prefix(one_request) + "film.mov")
        assert missing.value.response["Error"]["Code"] == "404"
