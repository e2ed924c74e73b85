"""Secrets never reach logs, output, reports or exception texts, and the prefix rewrite never leaves the
destination prefix.

The worker runs against moto's server with real-looking fake credentials (an ``AKIA`` key id, a secret and a
session token; moto accepts any). moto never echoes credentials, so the presigned-URL case (S3 and botocore
messages can quote a request's URL or credential scope) is played with botocore's Stubber.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.stub import Stubber

from mxtransfer_worker.cli import EXIT_ROWS_FAILED, main
from mxtransfer_worker.copier import FAILED, ObjectCopier
from mxtransfer_worker.errors import RedactingFilter, classify, redact
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.options import CopyOptions, KeyRewriteError

KEY_ID = "AKIAZ7QXMXTRANSFER42"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYmxtransfer1"
TOKEN = "FwoGZXIvYXdzEMXTRANSFERtokenDkH3pC4Y0bUn1QeX9rZ2//////////wEaDMxtRaNsFeRsessionTOKEN+q8="
SIGNATURE = "8f3c6a1b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c"
PRESIGNED = (f"https://src-bucket.s3.amazonaws.com/film.mov?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
             f"{KEY_ID}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600"
             f"&X-Amz-Security-Token={TOKEN}&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}")
SECRETS = (KEY_ID, SECRET, TOKEN, SIGNATURE, TOKEN[:24])


def assert_no_secret(text: str, where: str) -> None:
    found = [secret for secret in SECRETS if secret in text]
    assert not found, f"{where} holds {found}"


@pytest.fixture
def fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    credentials = boto3.session.Session().get_credentials()
    assert (credentials.access_key, credentials.token) == (KEY_ID, TOKEN)


def _stored_text(s3, bucket: str) -> str:
    """Every object of ``bucket`` (reports, checkpoints, manifests), as text."""
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert listing
    return "\n".join(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode() for item in listing)


def test_a_transfer_with_failures_leaks_no_credentials(s3, make_bucket, fake_credentials, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="mxtransfer_worker")
    source, destination, work = make_bucket("src"), make_bucket("dst"), make_bucket("work")
    s3.put_object(Bucket=source, Key="in/a.mov", Body=b"a")
    rows = [ManifestRow(source, "in/a.mov"), ManifestRow(source, "in/missing.mov"),
            ManifestRow("no-such-bucket-mxt", "in/b.mov"), ManifestRow(source, "in/../escape.mov")]
    upload_manifest(s3, rows, f"s3://{work}/m.csv")
    code = main(["copy", "--manifest", f"s3://{work}/m.csv", "--destination", f"s3://{destination}/out/",
                 "--report", f"s3://{work}/r/", "--source-prefix", "in/", "--no-copy-annotations"])
    assert code == EXIT_ROWS_FAILED
    main(["failed-rows", "--report", f"s3://{work}/r/shard-00000-of-00001.csv", "--manifest", f"s3://{work}/f.csv"])
    main(["abort-stale-uploads", "--destination", f"s3://{destination}/out/", "--report", f"s3://{work}/r/"])
    stored = _stored_text(s3, work)
    for code_name in ("NoSuchKey", "NoSuchBucket", "InvalidDestinationKey"):
        assert code_name in stored
    assert_no_secret(stored, "the reports and manifests")
    output = capsys.readouterr()
    assert_no_secret(caplog.text + output.out + output.err, "the logs")
    assert "shard 0/1 done" in caplog.text


def test_a_presigned_url_in_an_s3_message_is_redacted_everywhere(caplog):
    """Stubber: moto never quotes a request's URL or credentials in its errors; S3 and proxies can."""
    client = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id=KEY_ID,
                                            aws_secret_access_key=SECRET, aws_session_token=TOKEN)
    stubber = Stubber(client)
    stubber.add_client_error("head_object", "InvalidRequest", f"request {PRESIGNED} was refused; "
                             f"Credential={KEY_ID}/20260101/us-east-1/s3/aws4_request", 400)
    with stubber, ThreadPoolExecutor(1) as parts:
        result = ObjectCopier(client, CopyOptions(destination_bucket="dst", max_attempts=1), parts).copy(
            ManifestRow("src-bucket", "film.mov"))
    assert (result.status, result.error_code) == (FAILED, "InvalidRequest")
    assert "X-Amz-Signature=<redacted>" in result.message and "X-Amz-Security-Token=<redacted>" in result.message
    assert_no_secret(result.message, "the report message")
    assert_no_secret(str(classify(client_error_quoting_secrets(), "copy")), "the exception text")

    record = logging.LogRecord("mxtransfer_worker", logging.WARNING, __file__, 1, "could not read %s", (PRESIGNED,),
                               None)
    assert RedactingFilter().filter(record)
    assert_no_secret(record.getMessage(), "a log line")
    assert redact("nothing secret here") == "nothing secret here"


def client_error_quoting_secrets():
    """A ClientError quoting a session token and a secret as botocore's debug output prints them."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "AccessDenied", "Message": f"aws_session_token={TOKEN} "
                                                                     f"aws_secret_access_key={SECRET}"}}, "CopyObject")


@pytest.mark.parametrize("source_prefix, destination_prefix, key", [
    ("in/", "out/", "in/../escape.mov"),
    ("in/", "out/", "in/a/../../escape.mov"),
    ("in/", "out/", "in/./a.mov"),
    ("in/", "out/", "in/.."),
    ("in", "out/", "in/a.mov"),  # would give out//a.mov: an absolute path to os.path.join
    ("", "", "/etc/passwd"),
])
def test_prefix_rewrite_cannot_escape_the_destination_prefix(source_prefix, destination_prefix, key):
    options = CopyOptions(destination_bucket="dst", source_prefix=source_prefix, destination_prefix=destination_prefix)
    with pytest.raises(KeyRewriteError, match="could resolve outside the destination prefix"):
        options.destination_key(key)


@pytest.mark.parametrize("key, expected", [
    ("in/a..b/c.mov", "out/a..b/c.mov"),  # dots inside a name are not a path segment
    ("in/.hidden", "out/.hidden"),
    ("in/x/.../y", "out/x/.../y"),
])
def test_dots_within_names_are_kept(key, expected):
    assert CopyOptions(destination_bucket="dst", source_prefix="in/", destination_prefix="out/").destination_key(key) \
        == expected
