"""The S3 client the engine uses, configured for many parallel server-side copies: botocore's, since the engine needs
nothing boto3 adds to it (boto3 and s3transfer, which it imports, cost each worker ~0.02 s of start-up)."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config

from .errors import classify

if TYPE_CHECKING:
    import boto3

#: botocore's own retries (standard mode: exponential backoff with jitter) handle SlowDown/5xx/resets/timeouts
#: per request; the engine retries parts and whole objects on top, and ``throttle.RequestGovernor`` paces the
#: requests when S3 throttles. Not botocore's adaptive mode: its client-side rate limiter cuts the send rate at
#: every throttle and climbs back slowly, so a 1,000-object transfer with 5% of requests answered SlowDown took
#: 141 s with it against 10 s with standard mode and the governor of the time (tests/engine/test_faults.py).
REQUEST_MAX_ATTEMPTS = 10
#: ``upload`` sends smaller files with one PutObject, larger ones in parts (s3transfer's default threshold).
MULTIPART_THRESHOLD = 8 * 1024 * 1024


def make_s3_client(max_pool_connections: int = 64, endpoint_url: str | None = None, region_name: str | None = None,
                   session: boto3.session.Session | None = None, verify: bool | str | None = None):
    """An S3 client with standard retries and a connection pool sized for ``max_pool_connections`` threads.

    The endpoint comes from ``endpoint_url`` or the standard ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``
    variables. A custom endpoint (a local S3 server) gets path-style addressing and checksums only where
    required, which S3-compatible servers handle; real S3 keeps botocore's defaults. ``session`` (boto3's)
    supplies the credentials (e.g. one built from an Airflow connection) and makes a boto3 client; by default
    the client is botocore's, with the standard credential chain. ``verify`` is the TLS verification setting
    (False, or a CA bundle path).
    """
    custom_endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "max_attempts": REQUEST_MAX_ATTEMPTS},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=300,
        s3={"addressing_style": "path"} if custom_endpoint else None,
        request_checksum_calculation="when_required" if custom_endpoint else "when_supported",
    )
    create = session.client if session is not None else botocore.session.Session().create_client
    client = create("s3", endpoint_url=endpoint_url, region_name=region_name, config=config, verify=verify)
    client.meta.events.register_first("needs-retry.s3", _end_permanent_failures)
    return client


def _end_permanent_failures(caught_exception: Exception | None = None, **_) -> None:
    """Raise a request's failure at once when no retry can help (``errors.classify`` holds it permanent: a
    certificate no trusted CA signed). botocore's retry handler retries every connection error, so a wrong CA
    bundle took 11 attempts and about a minute of backoffs to fail; a ``needs-retry`` handler that raises ends
    the request with its error."""
    if caught_exception is not None and not classify(caught_exception, "").temporary:
        raise caught_exception


def upload(client, file: IO[bytes], bucket: str, key: str, **extra_args) -> None:
    """Upload the seekable ``file`` from its start to ``bucket``/``key`` as boto3's ``upload_fileobj`` does, with
    any S3 client: one PutObject under ``MULTIPART_THRESHOLD``, else s3transfer's multipart upload (imported only
    then: most reports and manifests are small, and its threads are not worth starting for one request)."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if size < MULTIPART_THRESHOLD:
        client.put_object(Bucket=bucket, Key=key, Body=file, **extra_args)
        return
    from s3transfer.manager import TransferManager

    with TransferManager(client) as manager:
        manager.upload(file, bucket, key, extra_args).result()


def is_aws_endpoint(client) -> bool:
    """Whether ``client`` talks to AWS's own S3 (``*.amazonaws.com``), not an S3-compatible server."""
    host = urlsplit(client.meta.endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
