"""Split a manifest into shards balanced by bytes, so that each worker can recompute its own rows.

The assignment is a pure function of the manifest's rows (in order), the shard count and the large-object
threshold, so the worker for shard ``i`` of ``N`` streams the same manifest and keeps the rows that land on
``i``; nobody needs to store per-shard manifests. It reads the manifest twice (``rows`` is a zero-argument
callable returning a fresh iterator, e.g. ``lambda: open_manifest(client, uri)``) and keeps O(N) state:

1. Count the rows and the very large objects (``size >= large_object_bytes``).
2. If the L large objects fit in their own shards with room left for the rest (L < N, or L == N and there
   is no rest), the k-th large object in manifest order gets shard k alone, and the other rows are spread
   over shards L..N-1. Otherwise every row is spread over all N shards.
   Spreading is greedy in manifest order: each row goes to the shard with the least weight so far, ties to
   the lowest index (a heap of ``(weight, index)``), which is deterministic. Greedy list scheduling keeps the
   heaviest shard within one row's weight of the ideal (total weight / shard count).

A row's weight is its size plus ``OBJECT_COST_BYTES``; a row of unknown size weighs ``UNKNOWN_SIZE_BYTES``
plus that cost, so rows without sizes are balanced by count.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .manifest import ManifestRow
from .parts import GiB, MiB

#: Default threshold for objects that get a shard of their own. An object of 64 GiB is 1,024 parts at the
#: engine's default 64 MiB part size, i.e. 32 rounds of a worker's 32 concurrent part copies: it keeps a
#: worker busy by itself for minutes, so other rows queued on the same worker only finish later (and a Spot
#: interruption there holds them up too). Below it, objects mix well with others.
DEFAULT_LARGE_OBJECT_BYTES = 64 * GiB
#: Weight of a row whose size is unknown: an ordinary small object, so such rows are balanced by count.
UNKNOWN_SIZE_BYTES = 1 * MiB
#: Weight added to every row for the requests its copy costs whatever its size (about one request's time
#: at ~85 MB/s per connection), so that zero-byte objects, such as folder markers, are spread by count
#: instead of all landing on the least-loaded shard.
OBJECT_COST_BYTES = 1 * MiB


@dataclass(frozen=True)
class ShardPlan:
    """Per-shard row counts and bytes (known sizes only) of a sharded manifest.

    ``large_objects`` counts rows of at least the large-object threshold; ``dedicated_shards`` is how many
    shards (0..dedicated_shards-1) hold exactly one of them, 0 when there were too many to dedicate shards.
    ``unknown_sizes`` counts rows without a size, which ``bytes`` leaves out.
    """

    shard_count: int
    rows: list[int]
    bytes: list[int]
    large_objects: int
    dedicated_shards: int
    unknown_sizes: int


class ManifestChangedError(RuntimeError):
    """The manifest read differently on the second pass than on the first, so the assignment is unsound."""


def plan_shards(
    rows: Callable[[], Iterable[ManifestRow]], shard_count: int, large_object_bytes: int = DEFAULT_LARGE_OBJECT_BYTES
) -> ShardPlan:
    """The shard sizes that ``shard_rows`` produces for each shard index of ``shard_count``."""
    _check_arguments(shard_count, large_object_bytes)
    counts = [0] * shard_count
    sizes = [0] * shard_count
    unknown = 0
    assignments = _Assignments(rows, shard_count, large_object_bytes)
    for shard, row in assignments:
        counts[shard] += 1
        if row.size is None:
            unknown += 1
        else:
            sizes[shard] += row.size
    return ShardPlan(shard_count, counts, sizes, assignments.large_objects, assignments.dedicated_shards, unknown)


def shard_rows(
    rows: Callable[[], Iterable[ManifestRow]],
    shard_index: int,
    shard_count: int,
    large_object_bytes: int = DEFAULT_LARGE_OBJECT_BYTES,
) -> Iterator[ManifestRow]:
    """The rows of shard ``shard_index`` of ``shard_count``, in manifest order (streams the manifest twice)."""
    _check_arguments(shard_count, large_object_bytes)
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be between 0 and {shard_count - 1} (shard_count - 1), got {shard_index}")
    return (row for shard, row in _Assignments(rows, shard_count, large_object_bytes) if shard == shard_index)


def _check_arguments(shard_count: int, large_object_bytes: int) -> None:
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    if large_object_bytes < 1:
        raise ValueError(f"large_object_bytes must be at least 1, got {large_object_bytes}")


class _Assignments:
    """Iterates ``(shard, row)`` for every row in manifest order: the one implementation of the assignment."""

    def __init__(self, rows: Callable[[], Iterable[ManifestRow]], shard_count: int, large_object_bytes: int) -> None:
        self._rows = rows
        self._shard_count = shard_count
        self._large_object_bytes = large_object_bytes
        self.large_objects = 0
        self.dedicated_shards = 0

    def _is_large(self, row: ManifestRow) -> bool:
        return row.size is not None and row.size >= self._large_object_bytes

    def __iter__(self) -> Iterator[tuple[int, ManifestRow]]:
        total = large = 0
        for row in self._rows():
            total += 1
            large += self._is_large(row)
        has_rest = total > large
        dedicated = large if large + has_rest <= self._shard_count else 0
        self.large_objects, self.dedicated_shards = large, dedicated

        heap = [(0, shard) for shard in range(dedicated, self._shard_count)]  # sorted, hence a valid heap
        seen = seen_large = 0
        for row in self._rows():
            seen += 1
            is_large = self._is_large(row)
            seen_large += is_large
            if seen > total or seen_large > large:
                break
            if dedicated and is_large:
                yield seen_large - 1, row
            else:
                weight, shard = heap[0]
                size = UNKNOWN_SIZE_BYTES if row.size is None else row.size
                heapq.heapreplace(heap, (weight + size + OBJECT_COST_BYTES, shard))
                yield shard, row
        if (seen, seen_large) != (total, large):
            second = "more" if seen > total or seen_large > large else f"{seen} rows ({seen_large} large)"
            raise ManifestChangedError(
                f"the manifest changed between the two passes: the first read {total} rows ({large} large), the "
                f"second {second}; pin the manifest (e.g. by version id) while sharding"
            )
