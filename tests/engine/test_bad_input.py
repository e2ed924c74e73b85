"""The bad-input corpus: each case gives its exact error (a clear task failure before any copy for a manifest
that cannot be read, a per-row error otherwise), no source object changes, no destination object is left partial
(no object, no multipart upload), and the rest of the transfer goes on.

Everything runs against the S3 emulator (``benchmarks/s3emulator``), because moto 5.2.5 ignores what several
cases need: ``ExpectedBucketOwner`` (AccessDenied on a source or destination bucket of another account) and
``CopySourceIfMatch`` (a source changed mid-copy), and it copies bytes too slowly to change a source during a
multipart copy. Neither server implements KMS, so the KMS case answers one CopyObject with S3's KMS AccessDenied
from a botocore ``before-send`` hook, while every other request of that transfer reaches the emulator.

Format details of the manifest reader (every malformed line shape, sizes sidecars, inventories) are unit-tested
in ``test_manifest.py``; this corpus runs whole transfers.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from mxtransfer_worker.cli import EXIT_BAD_INPUT, EXIT_OK, main
from mxtransfer_worker.copier import FAILED, SUCCEEDED
from mxtransfer_worker.manifest import MAX_LINE_CHARS, ManifestError, ManifestRow, read_manifest, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.shard import run_shard

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402

OURS, THEIRS, STRANGER = "111111111111", "222222222222", "999999999999"
GOOD_KEYS = ("in/first.mov", "in/last.mov")
BIG_KEY, BIG_SIZE = "in/master.mxf", 60 * MiB


@pytest.fixture(scope="module")
def emulator():
    """Part copies at 150 MB/s (5 MiB in about 35 ms), so a source can change during a multipart copy."""
    with S3Emulator(copy_bandwidth=150e6, write_rate=0, read_rate=0, copy_keepalive_s=0) as instance:
        yield instance


class Transfer:
    """A source bucket of ``THEIRS`` with two good objects, a destination bucket of ``OURS``, a work bucket."""

    def __init__(self, emulator: S3Emulator):
        self.emulator = emulator
        stem = uuid.uuid4().hex[:8]
        self.source, self.destination, self.work = f"src-{stem}", f"dst-{stem}", f"work-{stem}"
        emulator.create_bucket(self.source, account=THEIRS)
        emulator.create_bucket(self.destination, account=OURS)
        emulator.create_bucket(self.work, account=OURS)
        for key in GOOD_KEYS:
            emulator.put_virtual_object(self.source, key, 4096)
        self.client = make_s3_client(endpoint_url=emulator.url)

    def snapshot(self, rows: list[ManifestRow]) -> dict[tuple[str, str], tuple | None]:
        """The ETag, size and last modification of each source object of ``rows`` (None where there is none)."""
        objects = {}
        for row in rows:
            try:
                head = self.client.head_object(Bucket=row.bucket, Key=row.key)
                objects[(row.bucket, row.key)] = (head["ETag"], head["ContentLength"], head["LastModified"])
            except ClientError as error:
                assert error.response["Error"]["Code"] == "404"
                objects[(row.bucket, row.key)] = None
        return objects

    def destination_keys(self) -> list[str]:
        return sorted(item["Key"] for item in self.client.list_objects_v2(Bucket=self.destination).get("Contents", []))

    def uploads(self) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=self.destination).get("Uploads", [])


# -- per-row cases: a manifest of a good object, the bad row and another good object -------------------------------

@dataclass
class RowCase:
    #: Makes the bad row (and its objects) in the transfer; may return a callable run while the copy runs.
    make: Callable[[Transfer], ManifestRow]
    code: str
    message: str  # a regular expression the row's message must match
    options: dict = field(default_factory=dict)
    #: Whether the good rows succeed (an unwritable destination fails every row, each with its own error).
    others_succeed: bool = True
    during: Callable[[Transfer], None] | None = None


def _missing_key(transfer):
    return ManifestRow(transfer.source, "in/gone.mov")


def _missing_bucket(transfer):
    return ManifestRow("src-no-such-bucket", "in/a.mov")


def _same_as_destination(transfer):
    transfer.emulator.put_virtual_object(transfer.destination, "in/self.mov", 10)
    return ManifestRow(transfer.destination, "in/self.mov")


def _foreign_source(transfer):
    bucket = f"src-foreign-{uuid.uuid4().hex[:6]}"
    transfer.emulator.create_bucket(bucket, account=STRANGER)
    transfer.emulator.put_virtual_object(bucket, "in/a.mov", 10)
    return ManifestRow(bucket, "in/a.mov")


def _archived(transfer):
    transfer.emulator.put_virtual_object(transfer.source, "in/frozen.mov", 10, storage_class="DEEP_ARCHIVE")
    return ManifestRow(transfer.source, "in/frozen.mov")


def _long_key(transfer):
    key = "in/" + "k" * 1019  # 1,022 bytes here; "out/archive/" makes it 1,031
    transfer.emulator.put_virtual_object(transfer.source, key, 10)
    return ManifestRow(transfer.source, key)


def _escaping_key(transfer):
    transfer.emulator.put_virtual_object(transfer.source, "in/../secrets.txt", 10)
    return ManifestRow(transfer.source, "in/../secrets.txt")


def _plain(transfer):
    transfer.emulator.put_virtual_object(transfer.source, "in/plain.mov", 10)
    return ManifestRow(transfer.source, "in/plain.mov")


def _kms_denied(transfer):
    transfer.emulator.put_virtual_object(transfer.source, "in/sealed.mov", 10)
    return ManifestRow(transfer.source, "in/sealed.mov")


def _big(transfer):
    transfer.emulator.put_virtual_object(transfer.source, BIG_KEY, BIG_SIZE)
    return ManifestRow(transfer.source, BIG_KEY)


def _change_the_source_mid_copy(transfer):
    """Once two parts were copied, overwrite the source with other bytes of the same size."""
    deadline = time.monotonic() + 60
    while transfer.emulator.stats()["operations"].get("UploadPartCopy", 0) < 2:
        assert time.monotonic() < deadline, "the multipart copy never started"
        time.sleep(0.005)
    transfer.emulator.put_virtual_object(transfer.source, BIG_KEY, BIG_SIZE)


ROW_CASES = {
    "missing-key": RowCase(_missing_key, "NoSuchKey", r"^read s3://src-\w+/in/gone\.mov: NoSuchKey: the object does "
                           r"not exist \(deleted, or wrong key or version id in the manifest\)$"),
    "missing-bucket": RowCase(_missing_bucket, "NoSuchBucket", r"read s3://src-no-such-bucket/in/a\.mov: NoSuchBucket: "
                              r"bucket 'src-no-such-bucket' does not exist$"),
    "destination-is-the-source": RowCase(
        _same_as_destination, "SameSourceAndDestination",
        r"^s3://dst-\w+/in/self\.mov is its own destination; choose another destination bucket or prefix$",
        options={"destination_prefix": "in/"}),
    "access-denied-source": RowCase(
        _foreign_source, "AccessDenied", r"^read s3://src-foreign-\w+/in/a\.mov: AccessDenied: Forbidden \(check "
        r"that the job role may read the source .* and the expected bucket owner accounts\)$"),
    "access-denied-destination": RowCase(
        _plain, "AccessDenied", r"^read destination s3://dst-\w+/out/archive/plain\.mov: AccessDenied: Forbidden "
        r"\(check that the job role may read the source .* and the expected bucket owner accounts\)$",
        options={"expected_destination_owner": STRANGER}, others_succeed=False),
    "kms-access-denied": RowCase(
        _kms_denied, "KMS.AccessDeniedException", r"^copy s3://src-\w+/in/sealed\.mov to s3://dst-\w+/out/archive/"
        r"sealed\.mov: KMS\.AccessDeniedException: User: arn:aws:sts::111111111111:assumed-role/mxtransfer-job/i-0 is "
        r"not authorized to perform: kms:Decrypt .* \(the job role may not use the KMS key"),
    "archived": RowCase(_archived, "InvalidObjectState", r"^s3://src-\w+/in/frozen\.mov is archived \(DEEP_ARCHIVE\): "
                        r"restore it first \(RestoreObject\) and re-run the transfer$"),
    "key-over-1024-bytes": RowCase(_long_key, "InvalidDestinationKey", r"^s3://src-\w+/in/k{1019}: destination key "
                                   r"would be 1031 bytes after the prefix rewrite, over S3's 1024-byte limit$",
                                   options={"destination_prefix": "out/archive/"}),
    "key-escaping-the-prefix": RowCase(
        _escaping_key, "InvalidDestinationKey", r"^s3://src-\w+/in/\.\./secrets\.txt: the key's part after the source "
        r"prefix, '\.\./secrets\.txt', starts with '/' or holds a '\.' or '\.\.' segment, which could resolve outside "
        r"the destination prefix$"),
    "source-changed-mid-copy": RowCase(
        _big, "PreconditionFailed", r"^copy part \d+ of s3://src-\w+/in/master\.mxf to s3://dst-\w+/out/archive/master\.mxf: PreconditionFailed: At least "
        r"one of the pre-conditions you specified did not hold \(the source changed while it was being copied",
        during=_change_the_source_mid_copy),
}


class _Body:
    """The raw response ``AWSResponse`` reads: one chunk."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **kwargs):
        yield self.data


def _answer_kms_denied(request, **kwargs):
    """S3's answer to a copy whose source key the job role may not decrypt (before-send hook: no request sent)."""
    if request.method == "PUT" and request.url.endswith("/out/archive/sealed.mov"):
        body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>User: "
                b"arn:aws:sts::111111111111:assumed-role/mxtransfer-job/i-0 is not authorized to perform: kms:Decrypt "
                b"on resource: arn:aws:kms:us-east-1:222222222222:key/1234abcd because no resource-based policy "
                b"allows the kms:Decrypt action</Message><RequestId>R</RequestId></Error>")
        return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, _Body(body))
    return None


def _report(transfer: Transfer) -> dict[str, dict]:
    body = transfer.client.get_object(Bucket=transfer.work, Key="report/shard-00000-of-00001.csv")["Body"].read()
    return {row["key"]: row for row in csv.DictReader(io.StringIO(body.decode(), newline=""))}


@pytest.mark.parametrize("name", sorted(ROW_CASES))
def test_a_bad_row_fails_alone_with_its_exact_error(emulator, name):
    case = ROW_CASES[name]
    transfer = Transfer(emulator)
    bad = case.make(transfer)
    rows = [ManifestRow(transfer.source, GOOD_KEYS[0]), bad, ManifestRow(transfer.source, GOOD_KEYS[1])]
    upload_manifest(transfer.client, rows, f"s3://{transfer.work}/manifest.csv")
    before = transfer.snapshot(rows)
    assert list(before.values()).count(None) == (1 if name in ("missing-key", "missing-bucket") else 0)
    options = CopyOptions(**{"destination_bucket": transfer.destination, "source_prefix": "in/",
                             "destination_prefix": "out/archive/", "expected_source_owner": THEIRS,
                             "expected_destination_owner": OURS, "copy_annotations": False, "max_attempts": 1,
                             "multipart_threshold": 8 * MiB, "part_size": 5 * MiB, "part_concurrency": 2,
                             **case.options})
    during = threading.Thread(target=case.during, args=(transfer,)) if case.during else None
    if during:
        during.start()
    if name == "kms-access-denied":
        transfer.client.meta.events.register("before-send.s3.CopyObject", _answer_kms_denied)
    summary = run_shard(transfer.client, f"s3://{transfer.work}/manifest.csv", options, f"s3://{transfer.work}/report/")
    if during:
        during.join()

    report = _report(transfer)
    assert summary["rows"] == 3 and sorted(report) == sorted(row.key for row in rows)
    failure = report[bad.key]
    assert (failure["status"], failure["error_code"]) == (FAILED, case.code)
    assert re.search(case.message, failure["message"]), failure["message"]
    after = transfer.snapshot(rows)
    if case.during:  # the test itself changed the source: only its ETag moved
        assert after[(bad.bucket, bad.key)][0] != before.pop((bad.bucket, bad.key))[0]
        after.pop((bad.bucket, bad.key))
    assert after == before  # no source object changed
    assert transfer.uploads() == []  # nothing partial: no upload left behind...
    copied = [options.destination_key(key) for key in GOOD_KEYS] if case.others_succeed else []
    if name == "destination-is-the-source":
        copied.append(bad.key)  # the source object itself, untouched
    assert transfer.destination_keys() == sorted(copied)  # ...and no object of the bad row
    for key in GOOD_KEYS:
        expected = (SUCCEEDED, "") if case.others_succeed else (FAILED, case.code)
        assert (report[key]["status"], report[key]["error_code"]) == expected, report[key]["message"]


# -- manifests: readable variants go through, unreadable ones stop the task before any copy --------------------------

GOOD_LINES = "{source},in/first.mov\n{source},in/last.mov\n"
MANIFEST_CASES = {
    # name: (manifest text, exit code, the exact "bad input" message, or None when every row is copied)
    "wrong-columns": ("{source},in/first.mov\n{source},in/last.mov,v1,extra\n", EXIT_BAD_INPUT,
                      " line 2: expected 2 or 3 columns (bucket,key[,versionId]), got 4"),
    "bad-url-encoding": ("{source},in/first.mov\n{source},in/100%.mov\n", EXIT_BAD_INPUT,
                         " line 2: bad URL encoding in key 'in/100%.mov'"),
    "header-line": ("Bucket,Key\n" + GOOD_LINES, EXIT_BAD_INPUT, " line 1: invalid bucket name 'Bucket'"),
    "blank-line-inside": ("{source},in/first.mov\n\n{source},in/last.mov\n", EXIT_BAD_INPUT,
                          " line 2: blank line before the end of the file"),
    "not-utf8": ("{source},in/first.mov\n{source},in/\udcff.mov\n", EXIT_BAD_INPUT,
                 ": not UTF-8 text at or after line 1: 'utf-8' codec can't decode byte 0xff"),
    "missing-trailing-newline": (GOOD_LINES.rstrip("\n"), EXIT_OK, None),
    "bom": ("\ufeff" + GOOD_LINES, EXIT_OK, None),
    "crlf": (GOOD_LINES.replace("\n", "\r\n"), EXIT_OK, None),
    "empty-file": ("", EXIT_OK, None),  # a valid manifest of no rows: incremental inventories are often empty
}


@pytest.mark.parametrize("name", sorted(MANIFEST_CASES))
def test_a_manifest_is_read_whole_or_refused_before_any_copy(emulator, monkeypatch, caplog, name):
    text, expected_code, message = MANIFEST_CASES[name]
    transfer = Transfer(emulator)
    body = text.format(source=transfer.source).encode("utf-8", errors="surrogateescape")
    transfer.client.put_object(Bucket=transfer.work, Key="manifest.csv", Body=body)
    sources = [ManifestRow(transfer.source, key) for key in GOOD_KEYS]
    before = transfer.snapshot(sources)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    code = main(["copy", "--manifest", f"s3://{transfer.work}/manifest.csv", "--destination",
                 f"s3://{transfer.destination}/out/", "--report", f"s3://{transfer.work}/report/", "--source-prefix",
                 "in/", "--no-copy-annotations"])
    assert code == expected_code
    assert transfer.snapshot(sources) == before
    if message is None:
        copied = [] if name == "empty-file" else ["out/first.mov", "out/last.mov"]
        assert transfer.destination_keys() == copied
        assert len(_report(transfer)) == len(copied)
        return
    (error,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("bad input: ")]
    assert error.startswith(f"bad input: manifest s3://{transfer.work}/manifest.csv{message}"), error
    assert transfer.destination_keys() == []  # refused before the first copy, though line 1 was good


class _EndlessLine(io.TextIOBase):
    """A text stream of one line that never ends (a 10 GB line, or a binary file without a newline), counting
    what the reader asked for."""

    def __init__(self):
        self.served = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> str:
        assert size > 0, "the reader asked for a whole line"
        self.served += size
        return "b" * size


def test_a_10_gb_line_is_refused_without_reading_it_whole():
    stream = _EndlessLine()
    with pytest.raises(ManifestError, match=r"manifest line 1: line longer than 65,536 characters: not a manifest "
                                            r"line \(a corrupt or binary file\?\)"):
        list(read_manifest(stream))
    assert stream.served == MAX_LINE_CHARS + 1

