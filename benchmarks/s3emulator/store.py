"""The in-memory metadata store: buckets, objects, multipart uploads and what their bytes are.

An object's content is either real bytes (small objects) or a tuple of *segments* ``(content_id, offset, length)``
over virtual "bases" that have a size, an MD5 and checksums but no bytes. Copies and part copies slice and
concatenate segments, so a correct multipart copy of a virtual object normalizes back to exactly the source's
segments and gets the source's full-object checksum, while a wrong one (a missing or shifted part) does not.
Virtual bytes, where someone reads them, are pseudo-random and derived from the content id alone.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import random
import time
import zlib
from dataclasses import dataclass, field
from itertools import chain

from . import errors

try:  # awscrt comes with botocore[crt]; without it CRC32C/CRC64NVME of real bytes are deterministic stand-ins.
    from awscrt import checksums as _crt_checksums
except ImportError:  # pragma: no cover - depends on the environment
    _crt_checksums = None

CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
_CHECKSUM_BYTES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
STORAGE_CLASSES = frozenset(
    {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE",
     "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE"}
)
_BLOCK = 64 * 1024


def _fake_digest(kind: str, identity: str, nbytes: int) -> bytes:
    return hashlib.sha256(f"{kind}\0{identity}".encode()).digest()[:nbytes]


def compute_checksum(algorithm: str, data: bytes) -> bytes | None:
    """The raw digest of ``data`` with an S3 checksum algorithm, or None where no implementation is at hand."""
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "SHA1":
        return hashlib.sha1(data).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(data).digest()
    if _crt_checksums is None:
        return None
    if algorithm == "CRC32C":
        return _crt_checksums.crc32c(data).to_bytes(4, "big")
    return _crt_checksums.crc64nvme(data).to_bytes(8, "big")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(slots=True)
class Base:
    """A virtual byte sequence: its size, MD5 (hex) and any checksums (base64) it was declared with."""

    size: int
    md5: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)


class Content:
    """What an object or part holds: real ``data`` or virtual ``segments``; MD5 and checksums are cached."""

    __slots__ = ("size", "data", "segments", "_md5", "_checksums")

    def __init__(self, size: int, data: bytes | None = None, segments: tuple = ()) -> None:
        self.size = size
        self.data = data
        self.segments = segments
        self._md5: str | None = None
        self._checksums: dict[str, str] = {}

    @classmethod
    def from_bytes(cls, data: bytes) -> Content:
        return cls(len(data), data=data)

    def slice(self, start: int, end: int) -> Content:
        """Bytes ``start`` to ``end`` (exclusive)."""
        if self.data is not None:
            return Content.from_bytes(self.data[start:end])
        out, pos = [], 0
        for content_id, offset, length in self.segments:
            lo, hi = max(start, pos), min(end, pos + length)
            if lo < hi:
                out.append((content_id, offset + lo - pos, hi - lo))
            pos += length
            if pos >= end:
                break
        return Content(end - start, segments=tuple(out))


@dataclass(slots=True)
class ObjectRecord:
    """One object: content plus everything S3 keeps about it."""

    key: str
    content: Content
    etag: str
    last_modified: float
    owner: str
    content_type: str = "binary/octet-stream"
    #: Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires (lower-case names).
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksum_algorithm: str | None = None
    checksum_type: str | None = None
    checksum: str | None = None
    part_sizes: tuple[int, ...] | None = None
    restored: bool = False
    #: Listing XML cache, filled by the first listing that shows the object: ``(url-encoded <Key> element, the
    #: elements after it)``. Valid for the record's life: what a listing shows never changes in a record (an
    #: overwrite puts a new record).
    listing: tuple[str, str] | None = None

    @property
    def size(self) -> int:
        return self.content.size


@dataclass(slots=True)
class Part:
    number: int
    content: Content
    etag: str
    last_modified: float
    checksum: str | None = None


@dataclass(slots=True)
class Upload:
    """A multipart upload in progress, with the attributes the object will get on completion."""

    upload_id: str
    key: str
    initiated: float
    owner: str
    storage_class: str
    content_type: str
    headers: dict[str, str]
    metadata: dict[str, str]
    tags: dict[str, str]
    checksum_algorithm: str | None
    checksum_type: str | None
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass(slots=True)
class Bucket:
    name: str
    owner: str
    region: str
    created: float
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    #: Completed upload id -> (key, response body), so that a retried Complete answers like the first one.
    completed: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _sorted: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)

    def put(self, record: ObjectRecord) -> None:
        if record.key not in self.objects:
            self._pending.append(record.key)
        self.objects[record.key] = record

    def delete(self, key: str) -> bool:
        if self.objects.pop(key, None) is None:
            return False
        if self._pending:
            self._merge()
        index = bisect.bisect_left(self._sorted, key)
        del self._sorted[index]
        return True

    def sorted_keys(self) -> list[str]:
        """All keys in S3 (UTF-8 binary, i.e. code point) order; new keys are merged in lazily."""
        if self._pending:
            self._merge()
        return self._sorted

    def _merge(self) -> None:
        self._pending.sort()
        self._sorted = sorted(chain(self._sorted, self._pending))  # two sorted runs: timsort merges in O(n)
        self._pending = []


class Store:
    """All buckets plus the registry of virtual bases; used only from the emulator's event-loop thread."""

    def __init__(self, small_object_max: int) -> None:
        self.small_object_max = small_object_max
        self.buckets: dict[str, Bucket] = {}
        self.bases: dict[str, Base] = {}
        self._sequence = 0

    def bucket(self, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise errors.no_such_bucket(name)
        return bucket

    def create_bucket(self, name: str, owner: str, region: str) -> Bucket:
        existing = self.buckets.get(name)
        if existing is not None:
            if existing.owner == owner:
                raise errors.S3Error(
                    409, "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.", BucketName=name,
                )
            raise errors.S3Error(
                409, "BucketAlreadyExists",
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system."
                " Please select a different name and try again.", BucketName=name,
            )
        bucket = self.buckets[name] = Bucket(name, owner, region, time.time())
        return bucket

    def new_content_id(self, hint: str) -> str:
        self._sequence += 1
        return f"{hint}#{self._sequence}"

    def virtual(self, size: int, content_id: str, md5: str | None = None, checksums: dict[str, str] | None = None) -> Content:
        """Register a virtual base and return content covering all of it."""
        self.bases[content_id] = Base(size, md5, dict(checksums or {}))
        return Content(size, segments=((content_id, 0, size),) if size else ())

    def concat(self, contents: list[Content]) -> Content:
        """The concatenation: real bytes while small enough, else normalized (merged adjacent) segments."""
        size = sum(c.size for c in contents)
        if size <= self.small_object_max and all(c.data is not None for c in contents):
            return Content.from_bytes(b"".join(c.data for c in contents))
        merged: list[tuple[str, int, int]] = []
        for content in contents:
            if content.data is not None:
                md5 = self.md5(content)
                segments = self.virtual(content.size, f"data:{md5}", md5=md5).segments
            else:
                segments = content.segments
            for content_id, offset, length in segments:
                if merged and merged[-1][0] == content_id and merged[-1][1] + merged[-1][2] == offset:
                    merged[-1] = (content_id, merged[-1][1], merged[-1][2] + length)
                else:
                    merged.append((content_id, offset, length))
        return Content(size, segments=tuple(merged))

    def _whole_base(self, content: Content) -> Base | None:
        if len(content.segments) == 1:
            content_id, offset, length = content.segments[0]
            base = self.bases[content_id]
            if offset == 0 and length == base.size:
                return base
        return None

    @staticmethod
    def _identity(content: Content, whole_base: Base | None) -> str:
        """What derived digests of virtual content hash: its content id when it is one whole base, else its segments."""
        return content.segments[0][0] if whole_base is not None else repr(content.segments)

    def md5(self, content: Content) -> str:
        """MD5 (hex) of the content: real for bytes, declared or derived for virtual content."""
        if content._md5 is None:
            if content.data is not None:
                content._md5 = hashlib.md5(content.data).hexdigest()
            else:
                base = self._whole_base(content)
                if base is not None and base.md5:
                    content._md5 = base.md5
                else:
                    content._md5 = _fake_digest("md5", self._identity(content, base), 16).hex()
        return content._md5

    def checksum(self, content: Content, algorithm: str) -> str:
        """Full-object checksum (base64): real for bytes, declared or derived from the segments for virtual content."""
        value = content._checksums.get(algorithm)
        if value is None:
            raw = compute_checksum(algorithm, content.data) if content.data is not None else None
            if raw is None:
                base = self._whole_base(content) if content.data is None else None
                if base is not None and algorithm in base.checksums:
                    value = base.checksums[algorithm]
                else:
                    identity = self._identity(content, base) if content.data is None else self.md5(content)
                    raw = _fake_digest(algorithm, identity, _CHECKSUM_BYTES[algorithm])
            content._checksums[algorithm] = value = value or b64(raw)
        return value

    def composite_checksum(self, algorithm: str, part_checksums: list[str]) -> str:
        """S3's COMPOSITE checksum: the checksum of the concatenated raw part checksums, then ``-N``."""
        joined = b"".join(base64.b64decode(value) for value in part_checksums)
        raw = compute_checksum(algorithm, joined) or _fake_digest(algorithm, joined.hex(), _CHECKSUM_BYTES[algorithm])
        return f"{b64(raw)}-{len(part_checksums)}"

    def iter_bytes(self, content: Content, start: int, end: int):
        """Yield the content's bytes from ``start`` to ``end`` (exclusive) in pieces of at most 64 KiB."""
        if content.data is not None:
            for pos in range(start, end, _BLOCK):
                yield content.data[pos:min(end, pos + _BLOCK)]
            return
        for content_id, offset, length in content.slice(start, end).segments:
            pos, stop = offset, offset + length
            while pos < stop:
                block = pos // _BLOCK
                seed = int.from_bytes(hashlib.sha256(f"{content_id}\0{block}".encode()).digest()[:8], "big")
                chunk = random.Random(seed).randbytes(_BLOCK)
                lo = pos - block * _BLOCK
                hi = min(_BLOCK, stop - block * _BLOCK)
                yield chunk[lo:hi]
                pos += hi - lo
