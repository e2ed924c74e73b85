"""The boto3 S3 client the engine uses, configured for many parallel server-side copies."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

#: botocore's own retries (standard mode: exponential backoff with jitter) handle SlowDown/5xx/resets/timeouts
#: per request; the engine retries parts and whole objects on top, and ``throttle.RequestGovernor`` paces the
#: requests when S3 throttles. Not botocore's adaptive mode: its client-side rate limiter cuts the send rate at
#: every throttle and climbs back slowly, so a 1,000-object transfer with 5% of requests answered SlowDown took
#: 141 s with it against 10 s with standard mode and the governor of the time (tests/engine/test_faults.py).
REQUEST_MAX_ATTEMPTS = 10


def make_s3_client(max_pool_connections: int = 64, endpoint_url: str | None = None, region_name: str | None = None,
                   session: boto3.session.Session | None = None, verify: bool | str | None = None):
    """An S3 client with standard retries and a connection pool sized for ``max_pool_connections`` threads.

    The endpoint comes from ``endpoint_url`` or boto3's standard ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``
    variables. A custom endpoint (a local S3 server) gets path-style addressing and checksums only where
    required, which S3-compatible servers handle; real S3 keeps boto3's defaults. ``session`` supplies the
    credentials (e.g. one built from an Airflow connection); by default boto3's standard chain is used.
    ``verify`` is boto3's TLS verification setting (False, or a CA bundle path).
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
    return (session or boto3.session.Session()).client("s3", endpoint_url=endpoint_url, region_name=region_name,
                                                       config=config, verify=verify)


def is_aws_endpoint(client) -> bool:
    """Whether ``client`` talks to AWS's own S3 (``*.amazonaws.com``), not an S3-compatible server."""
    host = urlsplit(client.meta.endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
