"""Select the objects to copy: list bucket/prefix pairs (or read an S3 Inventory report) through filters.

Everything streams: ``select_listed`` and ``select_inventory`` are generators of ``ManifestRow`` (with sizes)
meant to be fed straight into ``manifest.upload_manifest``, so a listing of millions of keys never sits in
memory. ``ListingCounts`` is filled in while the rows are consumed.

The "identical at the destination" pre-filter merges the source listing with a listing of the destination
prefix. S3 lists keys in UTF-8 binary order, which is the code point order Python compares strings in, and
replacing a common prefix by another (``CopyOptions.destination_key``) keeps that order, so one pass over both
listings, side by side, finds every destination key. It compares size and ETag only: a cheap way to leave out
what an earlier run already copied; the copy engine still checks every row it copies.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

from .listing import ListedObject, ParallelLister, list_prefix
from .manifest import ManifestRow, read_inventory
from .options import CopyOptions, KeyRewriteError
from .s3uri import S3Uri


@dataclass(frozen=True)
class ObjectFilter:
    """Which listed objects go into the manifest.

    ``include``/``exclude`` are ``fnmatch`` glob patterns (case-sensitive; ``*`` also matches ``/``) matched
    against the key relative to its source prefix (``photos/2024/a.jpg`` under prefix ``photos/`` is matched
    as ``2024/a.jpg``). An object is kept when it matches some ``include`` pattern (or there are none), no
    ``exclude`` pattern, was last modified in ``[modified_after, modified_before)`` (so consecutive data
    intervals select each object once; naive datetimes are UTC) and has ``min_size <= size <= max_size``.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    min_size: int | None = None
    max_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            patterns = getattr(self, name)
            if isinstance(patterns, str):
                patterns = (patterns,)
            if not all(isinstance(pattern, str) and pattern for pattern in patterns):
                raise ValueError(f"{name} must be a list of non-empty glob patterns, got {patterns!r}")
            object.__setattr__(self, name, tuple(patterns))
        for name in ("modified_after", "modified_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=timezone.utc))
        if self.modified_after and self.modified_before and self.modified_after >= self.modified_before:
            raise ValueError(
                f"modified_after ({self.modified_after.isoformat()}) must be before modified_before "
                f"({self.modified_before.isoformat()})"
            )
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number of bytes >= 0, got {value!r}")
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")

    @property
    def uses_modification_time(self) -> bool:
        """Whether the filter needs each object's last-modified time."""
        return self.modified_after is not None or self.modified_before is not None

    def matches(self, relative_key: str, size: int | None, last_modified: datetime | None) -> bool:
        """Whether an object passes; an unknown size or time passes the size or time bounds."""
        if self.include and not any(fnmatch.fnmatchcase(relative_key, pattern) for pattern in self.include):
            return False
        if any(fnmatch.fnmatchcase(relative_key, pattern) for pattern in self.exclude):
            return False
        if size is not None:
            if self.min_size is not None and size < self.min_size:
                return False
            if self.max_size is not None and size > self.max_size:
                return False
        if last_modified is not None:
            if self.modified_after is not None and last_modified < self.modified_after:
                return False
            if self.modified_before is not None and last_modified >= self.modified_before:
                return False
        return True


_NO_FILTER = ObjectFilter()


@dataclass
class ListingCounts:
    """What a selection saw, filled in while its rows are consumed: objects listed, left out by the filter,
    and left out because an identical copy is already at the destination (with their bytes)."""

    listed: int = 0
    listed_bytes: int = 0
    filtered_out: int = 0
    identical: int = 0
    identical_bytes: int = 0
    sources: list[str] = field(default_factory=list)


def select_listed(
    client,
    sources: Sequence[S3Uri],
    object_filter: ObjectFilter = ObjectFilter(),
    counts: ListingCounts | None = None,
    skip_identical: CopyOptions | None = None,
    requester_pays: bool = False,
    concurrency: int = 0,
) -> Iterator[ManifestRow]:
    """The objects under each source (bucket and prefix, one after the other) that pass ``object_filter``.

    With ``skip_identical`` (the copy's options), objects whose destination key (``destination_key``) already
    holds an object of the same size and ETag are left out; that needs both listings in key order, so it lists
    through boto3, one page at a time. Otherwise ``concurrency`` > 0 lists each source with that many requests
    in flight (``listing.ParallelLister``: rows in key order within each prefix or key range only); 0 lists in
    key order through boto3.
    """
    check_sources(sources)
    counts = counts if counts is not None else ListingCounts()
    lister = ParallelLister(client, concurrency) if concurrency and skip_identical is None else None
    for source in sources:
        counts.sources.append(str(source))
        listed = lister.objects(source, requester_pays) if lister else list_prefix(client, source, requester_pays)
        objects = _counted(listed, counts)
        kept = objects if object_filter == _NO_FILTER else (
            listed for listed in objects if _passes(object_filter, source.key, listed, counts))
        if skip_identical is not None:
            kept = _not_at_destination(client, source, kept, skip_identical, counts, requester_pays)
        for listed in kept:
            yield ManifestRow(source.bucket, listed.key, size=listed.size, etag=listed.etag or None)


def select_inventory(
    client,
    manifest_json_uri: str,
    object_filter: ObjectFilter = ObjectFilter(),
    counts: ListingCounts | None = None,
    sources: Sequence[S3Uri] = (),
) -> Iterator[ManifestRow]:
    """The objects of an S3 Inventory report (its ``manifest.json``) that pass ``object_filter``.

    With ``sources``, only objects under one of those bucket/prefix pairs are kept, and patterns are matched
    against the key relative to that prefix. The report's rows carry no modification time or ETag, so the
    time bounds and the identical-at-destination filter need a listing instead.
    """
    if object_filter.uses_modification_time:
        raise ValueError(
            "modified_after/modified_before need the objects' modification times, which inventory rows do not "
            "carry here: list the source instead of reading an inventory report"
        )
    check_sources(sources)
    counts = counts if counts is not None else ListingCounts()
    counts.sources.append(manifest_json_uri)
    for row in read_inventory(client, manifest_json_uri):
        counts.listed += 1
        counts.listed_bytes += row.size or 0
        base = _base_prefix(row, sources)
        if base is None or not object_filter.matches(row.key[len(base):], row.size, None):
            counts.filtered_out += 1
            continue
        yield ManifestRow(row.bucket, row.key, row.version_id, row.size, etag=row.etag)


def check_sources(sources: Sequence[S3Uri]) -> None:
    """Reject pairs that would list an object twice: a prefix of one bucket inside another of the same bucket."""
    for index, first in enumerate(sources):
        for second in sources[index + 1:]:
            if first.bucket == second.bucket and (
                first.key.startswith(second.key) or second.key.startswith(first.key)
            ):
                raise ValueError(f"sources {first} and {second} overlap: each object would be listed twice")


def _counted(objects: Iterable[ListedObject], counts: ListingCounts) -> Iterator[ListedObject]:
    for listed in objects:
        counts.listed += 1
        counts.listed_bytes += listed.size
        yield listed


def _passes(object_filter: ObjectFilter, prefix: str, listed: ListedObject, counts: ListingCounts) -> bool:
    if object_filter.matches(listed.key[len(prefix):], listed.size, listed.last_modified):
        return True
    counts.filtered_out += 1
    return False


def _base_prefix(row: ManifestRow, sources: Sequence[S3Uri]) -> str | None:
    """The prefix ``row`` is matched relative to: "" without sources, else its source's prefix (None if none)."""
    if not sources:
        return ""
    for source in sources:
        if row.bucket == source.bucket and row.key.startswith(source.key):
            return source.key
    return None


def _not_at_destination(
    client, source: S3Uri, objects: Iterable[ListedObject], options: CopyOptions, counts: ListingCounts,
    requester_pays: bool,
) -> Iterator[ListedObject]:
    """``objects`` (in S3 key order) without those whose destination already holds the same size and ETag."""
    if source.key.startswith(options.source_prefix):
        destination_prefix = options.destination_prefix + source.key[len(options.source_prefix):]
    else:  # only keys under the source prefix have destinations; they sort together, below the prefix
        destination_prefix = options.destination_prefix
    destination = list_prefix(client, S3Uri(options.destination_bucket, destination_prefix), requester_pays)
    current, started = None, False
    for listed in objects:
        try:
            key = options.destination_key(listed.key)
        except KeyRewriteError:
            yield listed  # the copy reports why this row has no destination
            continue
        if not started:  # list the destination only once some key has one
            current, started = next(destination, None), True
        while current is not None and current.key < key:
            current = next(destination, None)
        if current is not None and current.key == key and (current.size, current.etag) == (listed.size, listed.etag):
            counts.identical += 1
            counts.identical_bytes += listed.size
            continue
        yield listed
