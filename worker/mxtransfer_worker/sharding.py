"""Split a manifest into shards balanced by bytes, so that each worker can recompute its own rows.

The assignment is a pure function of the manifest's rows (in order), the shard count and the large-object
threshold, so the worker for shard ``i`` of ``N`` streams the same manifest and keeps the rows that land on
``i``; nobody needs to store per-shard manifests. It reads the manifest twice (``rows`` is a zero-argument
callable returning a fresh iterator, e.g. ``lambda: open_manifest(client, uri)``; the first pass needs only the
sizes, so ``sizes``, where given, is a cheaper zero-argument callable for it, e.g.
``lambda: manifest_sizes(client, uri)``) and keeps O(N) state:

1. Count the rows and the very large objects (``size >= large_object_bytes``).
2. If the L large objects fit in their own shards with room left for the rest (L < N, or L == N and there
   is no rest), the k-th large object in manifest order gets shard k alone, and the other rows are spread
   over shards L..N-1. Otherwise every row is spread over all N shards.
   Spreading is greedy in manifest order: each row goes to the shard with the least weight so far, ties to
   the lowest index (a heap of ``(weight, index)``), which is deterministic. Greedy list scheduling keeps the
   heaviest shard within one row's weight of the ideal (total weight / shard count).

A row's weight is its size plus ``OBJECT_COST_BYTES``; a row of unknown size weighs ``UNKNOWN_SIZE_BYTES``
plus that cost, so rows without sizes are balanced by count.

Splitting (``split_part_size`` given): when the large objects have shards of their own and shards are left
over, the spare shards go one at a time to whichever large object, or the rest, has the most weight per shard
so far (ties to the earlier object, the rest last; an object gets at most one shard per part). A large object
with a group of g shards becomes g ``PartSlice`` work items: shard ``start + j`` copies the j-th of g runs of
consecutive parts (parts of ``choose_part_size(size, split_part_size)`` bytes), and ``split.py`` runs them.
Without ``split_part_size`` every spare shard goes to the rest, as above.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .manifest import ManifestRow
from .options import CopyOptions
from .parts import GiB, MiB, choose_part_size

#: Default threshold for objects that get a shard of their own. An object of 64 GiB is 1,024 parts at the
#: engine's default 64 MiB part size, all in flight at once (``parts.PART_RATE``), i.e. about 1,000
#: requests of the prefix's 3,500 per second that other rows on the same worker wait behind, and a Spot
#: interruption there holds them up too. Below it, objects mix well with others.
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
    shards (0..dedicated_shards-1) hold one of them or a slice of one's parts, 0 when there were too many to
    dedicate shards.
    ``unknown_sizes`` counts rows without a size, which ``bytes`` leaves out.
    """

    shard_count: int
    rows: list[int]
    bytes: list[int]
    large_objects: int
    dedicated_shards: int
    unknown_sizes: int


@dataclass(frozen=True)
class PartSlice:
    """Parts ``first_part`` to ``last_part`` (inclusive, of ``part_count`` parts of ``part_size`` bytes) of one
    large object, which shard ``group_start + member`` of a group of ``group_size`` shards copies."""

    row: ManifestRow
    part_size: int
    part_count: int
    first_part: int
    last_part: int
    group_start: int
    group_size: int
    member: int

    @property
    def bytes(self) -> int:
        """Bytes of this slice's parts."""
        return min(self.last_part * self.part_size, self.row.size) - (self.first_part - 1) * self.part_size


class ManifestChangedError(RuntimeError):
    """The manifest read differently on the second pass than on the first, so the assignment is unsound."""


def planning(options: CopyOptions) -> dict:
    """The planning arguments of a copy with ``options`` (``large_object_bytes`` and ``split_part_size`` for
    ``plan_shards`` and ``shard_work``), so the provider's plan and the workers' shards agree."""
    split = options.split_objects_over
    return {"large_object_bytes": split or DEFAULT_LARGE_OBJECT_BYTES, "split_part_size": options.part_size if split else None}


def plan_shards(
    rows: Callable[[], Iterable[ManifestRow]], shard_count: int, large_object_bytes: int = DEFAULT_LARGE_OBJECT_BYTES,
    split_part_size: int | None = None,
) -> ShardPlan:
    """The shard sizes that ``shard_work`` produces for each shard index of ``shard_count`` (a part slice counts
    as a row, with its parts' bytes)."""
    _check_arguments(shard_count, large_object_bytes)
    counts = [0] * shard_count
    sizes = [0] * shard_count
    unknown = 0
    assignments = _Assignments(rows, shard_count, large_object_bytes, split_part_size)
    for shard, item in assignments:
        counts[shard] += 1
        if isinstance(item, PartSlice):
            sizes[shard] += item.bytes
        elif item.size is None:
            unknown += 1
        else:
            sizes[shard] += item.size
    return ShardPlan(shard_count, counts, sizes, assignments.large_objects, assignments.dedicated_shards, unknown)


def shard_rows(
    rows: Callable[[], Iterable[ManifestRow]],
    shard_index: int,
    shard_count: int,
    large_object_bytes: int = DEFAULT_LARGE_OBJECT_BYTES,
) -> Iterator[ManifestRow]:
    """The rows of shard ``shard_index`` of ``shard_count``, in manifest order (streams the manifest twice)."""
    return shard_work(rows, shard_index, shard_count, large_object_bytes)


def shard_work(
    rows: Callable[[], Iterable[ManifestRow]],
    shard_index: int,
    shard_count: int,
    large_object_bytes: int = DEFAULT_LARGE_OBJECT_BYTES,
    split_part_size: int | None = None,
    sizes: Callable[[], Iterable[int | None]] | None = None,
) -> Iterator[ManifestRow | PartSlice]:
    """What shard ``shard_index`` of ``shard_count`` copies, in manifest order: rows, or with
    ``split_part_size`` (the copy's part size) possibly one ``PartSlice`` of a large object split between shards.
    ``sizes``: the rows' sizes in order, for the first pass (see the module's docstring)."""
    _check_arguments(shard_count, large_object_bytes)
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be between 0 and {shard_count - 1} (shard_count - 1), got {shard_index}")
    assignments = _Assignments(rows, shard_count, large_object_bytes, split_part_size, sizes)
    return (item for shard, item in assignments if shard == shard_index)


def _check_arguments(shard_count: int, large_object_bytes: int) -> None:
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    if large_object_bytes < 1:
        raise ValueError(f"large_object_bytes must be at least 1, got {large_object_bytes}")


class _Assignments:
    """Iterates ``(shard, row)`` for every row in manifest order: the one implementation of the assignment."""

    def __init__(self, rows: Callable[[], Iterable[ManifestRow]], shard_count: int, large_object_bytes: int,
                 split_part_size: int | None = None, sizes: Callable[[], Iterable[int | None]] | None = None) -> None:
        self._rows = rows
        self._sizes = sizes or (lambda: (row.size for row in rows()))
        self._shard_count = shard_count
        self._large_object_bytes = large_object_bytes
        self._split_part_size = split_part_size
        self.large_objects = 0
        self.dedicated_shards = 0

    def _is_large(self, size: int | None) -> bool:
        return size is not None and size >= self._large_object_bytes

    def _groups(self, large_sizes: list[int], rest_weight: int, has_rest: bool) -> list[int]:
        """Shards per large object (in manifest order) when they have shards of their own: one each, plus the
        spare shards when splitting (see the module's docstring)."""
        groups = [1] * len(large_sizes)
        if self._split_part_size is None:
            return groups
        caps = [-(-size // choose_part_size(size, self._split_part_size)) for size in large_sizes]
        weights = [size + OBJECT_COST_BYTES for size in large_sizes]
        rest_shards = int(has_rest)
        for _ in range(self._shard_count - len(large_sizes) - rest_shards):
            open_objects = [(weight / groups[k], -k) for k, weight in enumerate(weights) if groups[k] < caps[k]]
            best = max(open_objects, default=None)
            if best is None or (has_rest and rest_weight / rest_shards > best[0]):
                rest_shards += 1  # the rest's shards: every shard not in a group
            else:
                groups[-best[1]] += 1
        return groups

    def _slices(self, row: ManifestRow, start: int, group: int) -> Iterator[tuple[int, ManifestRow | PartSlice]]:
        if group == 1:
            yield start, row
            return
        part_size = choose_part_size(row.size, self._split_part_size)
        parts = -(-row.size // part_size)
        for member in range(group):
            yield start + member, PartSlice(row, part_size, parts, member * parts // group + 1,
                                            (member + 1) * parts // group, start, group, member)

    def __iter__(self) -> Iterator[tuple[int, ManifestRow | PartSlice]]:
        total = large = rest_weight = 0
        large_sizes: list[int] = []
        for size in self._sizes():
            total += 1
            if self._is_large(size):
                large += 1
                if large <= self._shard_count:
                    large_sizes.append(size)
            else:
                rest_weight += (UNKNOWN_SIZE_BYTES if size is None else size) + OBJECT_COST_BYTES
        has_rest = total > large
        dedicated = large if large + has_rest <= self._shard_count else 0
        groups = self._groups(large_sizes, rest_weight, has_rest) if dedicated else []
        starts = [sum(groups[:k]) for k in range(len(groups))]
        self.large_objects, self.dedicated_shards = large, sum(groups)

        heap = [(0, shard) for shard in range(sum(groups), self._shard_count)]  # sorted, hence a valid heap
        seen = seen_large = 0
        for row in self._rows():
            seen += 1
            is_large = self._is_large(row.size)
            seen_large += is_large
            if seen > total or seen_large > large:
                break
            if dedicated and is_large:
                yield from self._slices(row, starts[seen_large - 1], groups[seen_large - 1])
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
