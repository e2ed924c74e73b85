"""What two HEAD answers' checksums and ETags say about equal bytes (``checksums``): the skip of a destination that
already matches, and the checksums a multipart copy asks S3 to verify, rest on it."""

from __future__ import annotations

import datetime

import pytest

from mxtransfer_worker.checksums import compare_checksums, full_object_checksum, same_content

OLDER = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NEWER = OLDER + datetime.timedelta(hours=1)
EARLIER = OLDER - datetime.timedelta(hours=1)


def _head(size: int = 10, etag: str = '"a"', modified=OLDER, **checksum) -> dict:
    return {"ContentLength": size, "ETag": etag, "LastModified": modified, **checksum}


FULL = {"ChecksumCRC64NVME": "AAAA", "ChecksumType": "FULL_OBJECT"}
OTHER_FULL = {"ChecksumCRC64NVME": "BBBB", "ChecksumType": "FULL_OBJECT"}
COMPOSITE = {"ChecksumCRC32C": "CCCC-2", "ChecksumType": "COMPOSITE"}
OTHER_COMPOSITE = {"ChecksumCRC32C": "DDDD-3", "ChecksumType": "COMPOSITE"}


@pytest.mark.parametrize(("source", "destination", "verdict"), [
    (_head(**FULL), _head(etag='"b"', **FULL), "same size and CRC64NVME"),
    (_head(**FULL), _head(modified=NEWER, **OTHER_FULL), None),  # full-object checksums decide, even against a date
    (_head(**COMPOSITE), _head(etag='"b"', **COMPOSITE), "same size and CRC32C"),
    # other part sizes give another composite value: the ETag, then the dates decide
    (_head(**COMPOSITE), _head(**OTHER_COMPOSITE), "same size and ETag"),
    (_head(**COMPOSITE), _head(etag='"b"', modified=NEWER, **OTHER_COMPOSITE),
     "same size, destination newer than source (no comparable checksum)"),
    (_head(**COMPOSITE), _head(etag='"b"', modified=EARLIER, **OTHER_COMPOSITE), None),
    (_head(**FULL), _head(size=11, **FULL), None),  # sizes first
    (_head(**FULL), _head(**COMPOSITE), "same size and ETag"),  # different algorithms cannot decide
])
def test_same_content_decides_by_size_then_checksums_then_etag_then_dates(source, destination, verdict):
    assert same_content(source, destination) == verdict


def test_a_checksum_without_its_type_is_composite_when_the_etag_is_a_multipart_one():
    assert compare_checksums(_head(etag='"x-2"', ChecksumCRC32="AA"), _head(etag='"y-3"', ChecksumCRC32="BB")) is None
    assert compare_checksums(_head(etag='"x"', ChecksumCRC32="AA"), _head(etag='"y"', ChecksumCRC32="BB")) == (
        "CRC32", False)


def test_only_full_object_crcs_are_checksums_s3_verifies_for_a_multipart_copy():
    assert full_object_checksum(_head(**FULL)).algorithm == "CRC64NVME"
    assert full_object_checksum(_head(**COMPOSITE)) is None
    assert full_object_checksum(_head(ChecksumSHA256="AAAA", ChecksumType="FULL_OBJECT")) is None
    assert full_object_checksum(_head()) is None
