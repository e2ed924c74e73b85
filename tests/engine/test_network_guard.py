"""The tests' network guard (``tests/conftest.py``): neither botocore nor the engine's native awscrt client may
reach a host off the loopback, so a test that forgot its endpoint fails instead of calling real AWS."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from mxtransfer_worker.native_s3 import NativeS3


def test_a_boto3_client_without_an_endpoint_cannot_resolve_aws():
    client = boto3.client("s3", region_name="us-east-1", endpoint_url="https://s3.amazonaws.com",
                          config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(EndpointConnectionError) as refused:
        client.list_buckets()
    causes = []
    error = refused.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__ or error.__context__
    assert any("'s3.amazonaws.com'" in text and "may only talk to servers on 127.0.0.1" in text for text in causes)


def test_the_native_client_is_not_built_for_aws(s3_server):
    with pytest.raises(OSError, match="'s3.amazonaws.com'.*may only talk to servers on 127.0.0.1"):
        NativeS3(boto3.client("s3", region_name="us-east-1", endpoint_url="https://s3.amazonaws.com"), 4)
    NativeS3(boto3.client("s3", region_name="us-east-1", endpoint_url=s3_server), 4)  # the loopback is fine
