"""The copy options shared by the worker CLI, the Lambda driver, the Airflow operators and the tests."""

from __future__ import annotations

from dataclasses import dataclass

from .parts import MAX_COPY_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB

#: S3's longest object key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


class KeyRewriteError(ValueError):
    """A source key cannot be mapped to a destination key (outside the source prefix, or too long)."""


@dataclass(frozen=True)
class CopyOptions:
    """Where and how objects are copied.

    ``source_prefix`` is replaced by ``destination_prefix`` in every key (``src/prefix/a.mov`` becomes
    ``dst/prefix/a.mov``); rows outside ``source_prefix`` fail. Objects up to ``multipart_threshold`` bytes
    are copied with one ``CopyObject``; larger ones by parallel ``UploadPartCopy`` of at least ``part_size``.
    An existing destination that differs from its source fails its row unless ``overwrite`` is set.
    """

    destination_bucket: str
    destination_prefix: str = ""
    source_prefix: str = ""
    storage_class: str | None = None
    #: ``AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS, with ``sse_kms_key_id``); None keeps the bucket default.
    sse: str | None = None
    sse_kms_key_id: str | None = None
    #: A canned ACL such as ``bucket-owner-full-control``, for destination buckets that still use ACLs.
    acl: str | None = None
    expected_source_owner: str | None = None
    expected_destination_owner: str | None = None
    requester_pays: bool = False
    overwrite: bool = False
    copy_tags: bool = True
    #: Copy S3 object annotations (multipart copies list and re-put them after completion).
    copy_annotations: bool = True
    #: Whether the endpoint honours ``If-None-Match: *`` on CopyObject (refuses to replace an existing key). Then
    #: a small object the manifest lists with its size and ETag is copied with that one request, and only a
    #: refusal (412) is looked into with HEADs. None: true for AWS's S3 endpoints only. Never set it true for an
    #: endpoint that ignores the header (moto 5.2.5 does): a differing destination would be overwritten.
    conditional_copy: bool | None = None
    #: Send CopyObject and UploadPartCopy through awscrt's native S3 client (``crt_copy``) instead of boto3.
    native_client: bool = True
    multipart_threshold: int = 256 * MiB
    #: The smallest part (but an object's last): larger objects get larger parts (``parts.tapered_plan``, or
    #: ``parts.choose_part_size`` when parts cannot go out at S3's pace).
    part_size: int = 64 * MiB
    #: Rows in flight at once: on object threads (HEADs, parts, retries), or sent as one conditional CopyObject
    #: (which takes no thread; copies of large objects have ``runner.SENT_COPIES`` more). 192 rather than 128:
    #: 100,000 objects of 1 MiB then reached 89-91% of a prefix's 3,500 writes per second, not 74-85% (a copy
    #: answers in 20 ms plus the client's own time), with as much CPU and no SlowDown.
    object_concurrency: int = 192
    #: Part copies of one object in flight at most; with the native client the pace bounds them too
    #: (``parts.PART_RATE``: thousands for parts of 100 MiB and more), over connections bounded by the limit on
    #: open files. Without it each part in flight takes a thread: lower it.
    part_concurrency: int = MAX_PARTS
    #: Objects of at least this many bytes get shards of their own, and spare shards of the array job copy
    #: parts of them side by side (``split.py``); None leaves that to ``sharding``'s default (64 GiB, one shard
    #: per object, no splitting).
    split_objects_over: int | None = None
    #: Attempts per object for temporary failures (throttling, 5xx, timeouts) after botocore's own retries.
    max_attempts: int = 4
    #: Throttled attempts (SlowDown...) per object or part besides ``max_attempts``: a fleet sharing one prefix
    #: meets SlowDown for as long as S3 takes to scale, and giving up then leaves the object uncopied. With the
    #: backoff capped at 20 s, 12 are about a minute of patience.
    throttled_attempts: int = 12
    retry_base_delay: float = 1.0

    def __post_init__(self) -> None:
        if not self.destination_bucket:
            raise ValueError("destination_bucket is required")
        if not 0 < self.multipart_threshold <= MAX_COPY_OBJECT_SIZE:
            raise ValueError(f"multipart_threshold must be between 1 and {MAX_COPY_OBJECT_SIZE} bytes (CopyObject's limit)")
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if self.sse not in (None, "AES256", "aws:kms"):
            raise ValueError(f"sse must be 'AES256' or 'aws:kms', not {self.sse!r}")
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id needs sse='aws:kms'")
        if self.split_objects_over is not None and self.split_objects_over <= self.multipart_threshold:
            raise ValueError(f"split_objects_over ({self.split_objects_over}) must be above multipart_threshold "
                             f"({self.multipart_threshold}): only multipart copies can be split")
        if self.object_concurrency < 1 or self.part_concurrency < 1 or self.max_attempts < 1 or self.throttled_attempts < 0:
            raise ValueError("object_concurrency, part_concurrency and max_attempts must be at least 1, "
                             "throttled_attempts at least 0")

    def destination_key(self, source_key: str) -> str:
        """The destination key for ``source_key``: the source prefix replaced by the destination prefix.

        S3 keys are plain strings, so the result always starts with the destination prefix; but tools that
        treat keys as paths (``os.path.join``, sync tools, the console's folders) would resolve a rewritten part
        that starts with ``/`` or holds ``.``/``..`` segments outside it, so such keys are refused."""
        if not source_key.startswith(self.source_prefix):
            raise KeyRewriteError(f"key is not under the source prefix {self.source_prefix!r}")
        relative = source_key[len(self.source_prefix):]
        # ("/." is where a "." or ".." segment starts: most keys have none, and need no split)
        if relative.startswith("/") or "/." in f"/{relative}" and any(segment in (".", "..")
                                                                      for segment in relative.split("/")):
            raise KeyRewriteError(f"the key's part after the source prefix, {relative[:100]!r}, starts with '/' or "
                                  "holds a '.' or '..' segment, which could resolve outside the destination prefix")
        key = self.destination_prefix + relative
        # (no key of up to a quarter of the limit in characters can pass it: UTF-8 takes at most 4 bytes a character)
        if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise KeyRewriteError(
                f"destination key would be {len(key.encode('utf-8'))} bytes after the prefix rewrite, "
                f"over S3's {MAX_KEY_BYTES}-byte limit"
            )
        return key

    @property
    def connections(self) -> int:
        """HTTP connections a client needs for these options: one per object and part thread, and a few for
        the manifest, reports and checkpoints."""
        return self.object_concurrency + self.part_concurrency + 4

    @property
    def requester_payer(self) -> dict:
        """The ``RequestPayer`` argument for every request when the buckets are requester-pays."""
        return {"RequestPayer": "requester"} if self.requester_pays else {}
