"""Shared fixtures: a real S3 endpoint (moto's server over HTTP on 127.0.0.1) and a network guard.

Every test runs with dummy credentials and an explicit endpoint; any attempt to resolve a host other than
the loopback, or to build the engine's native (awscrt) S3 client for one, fails the test instead of reaching
real AWS.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import pytest

_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # a proxy in the environment (pip's) cannot reach the servers tests start (lower case wins in urllib)
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
}
for _name, _value in _DUMMY_ENV.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in _LOOPBACK and not name.endswith(".127.0.0.1"):
        raise OSError(f"test tried to reach {name!r}: tests may only talk to servers on 127.0.0.1")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo


def _guard_native_clients() -> None:
    """awscrt resolves host names in native code, past the guard above: refuse to build the engine's native S3
    client (``native_s3.NativeS3``, the only way the engine reaches awscrt) for an endpoint not on the loopback.
    Every request of that client goes to its boto3 client's endpoint host (or a bucket's subdomain of it)."""
    from urllib.parse import urlsplit

    from mxtransfer_worker import native_s3

    build = native_s3.NativeS3.__init__

    def loopback_only_build(self, client, *args, **kwargs) -> None:
        _loopback_only_getaddrinfo(urlsplit(client.meta.endpoint_url).hostname, None)
        build(self, client, *args, **kwargs)

    native_s3.NativeS3.__init__ = loopback_only_build


_guard_native_clients()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free 127.0.0.1 port; yields its endpoint URL and sets AWS_ENDPOINT_URL to it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    yield endpoint
    server.stop()
    os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def s3(s3_server):
    """A boto3 S3 client for test set-up and checks, talking to the local server over HTTP."""
    from mxtransfer_worker.s3client import make_s3_client

    return make_s3_client(endpoint_url=s3_server)


@pytest.fixture
def make_bucket(s3):
    """Create a bucket with a unique valid name; returns its name."""

    def _make(stem: str = "bkt", versioned: bool = False) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return _make
