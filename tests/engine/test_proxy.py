"""S3 behind a proxy: awscrt's native client takes none, so the engine refuses to build it for an endpoint the boto3
client reaches through one (its copies and listings would go past the proxy), and says what to do instead."""

from __future__ import annotations

import pytest

from mxtransfer_worker.cli import EXIT_BAD_INPUT, main
from mxtransfer_worker.native_s3 import NativeClientUnavailable, NativeS3
from mxtransfer_worker.s3client import make_s3_client

PROXY = "http://user:secret@127.0.0.1:3128"  # nothing listens there: no request may go to it


@pytest.fixture
def behind_a_proxy(monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    return monkeypatch


def test_the_native_client_is_refused_for_an_endpoint_behind_a_proxy_which_is_named_without_its_password(
        s3_server, behind_a_proxy):
    with pytest.raises(NativeClientUnavailable) as refused:
        NativeS3(make_s3_client(endpoint_url=s3_server), 4)

    message = str(refused.value)
    assert f"S3 ({s3_server}) is reached through the proxy http://127.0.0.1:3128" in message
    assert "--no-native-client" in message and "listing_concurrency=0" in message and "NO_PROXY" in message
    assert "secret" not in message and "user" not in message


def test_an_endpoint_no_proxy_exempts_gets_the_native_client(s3_server, behind_a_proxy):
    behind_a_proxy.setenv("NO_PROXY", "127.0.0.1")

    NativeS3(make_s3_client(endpoint_url=s3_server), 4)


def test_the_worker_says_so_and_exits_two_before_any_request(s3_server, behind_a_proxy, caplog):
    # any request would have gone to the proxy, where nothing listens: a connection error, exit 75
    code = main(["copy", "--manifest", "s3://work/manifest.csv", "--destination", "s3://dst/",
                 "--report", "s3://work/report/"])

    assert code == EXIT_BAD_INPUT
    assert any(record.getMessage().startswith("bad input: S3 (") and "reached through the proxy" in record.getMessage()
               for record in caplog.records)
