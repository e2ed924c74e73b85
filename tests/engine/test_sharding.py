"""Shard planning: deterministic, complete, balanced, and recomputable per shard from (manifest, i, N)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.parts import GiB, MiB
from mxtransfer_worker.sharding import (
    DEFAULT_LARGE_OBJECT_BYTES,
    OBJECT_COST_BYTES,
    UNKNOWN_SIZE_BYTES,
    ManifestChangedError,
    ShardPlan,
    plan_shards,
    shard_rows,
    shard_work,
)

LARGE = 100 * GiB


def _manifest(sizes):
    rows = [ManifestRow("bkt", f"obj-{index:05d}", None, size, index + 1) for index, size in enumerate(sizes)]
    return lambda: iter(rows)


def _random_sizes(count, seed=7):
    """A media-like mix: many small files, some medium, a few big ones, all under the large threshold."""
    rng = random.Random(seed)
    return [
        rng.choice([rng.randint(0, 64 * 1024), rng.randint(1 * MiB, 500 * MiB), rng.randint(1 * GiB, 50 * GiB)])
        for _ in range(count)
    ]


def _shards(rows, count, **kwargs):
    return [list(shard_rows(rows, index, count, **kwargs)) for index in range(count)]


def test_same_result_twice():
    rows = _manifest(_random_sizes(2000) + [LARGE, None, 0, LARGE])
    assert _shards(rows, 7) == _shards(rows, 7)
    assert plan_shards(rows, 7) == plan_shards(rows, 7)


def test_a_first_pass_over_sizes_alone_assigns_the_same_work():
    sizes = _random_sizes(500) + [LARGE, None, 0, LARGE]
    rows = _manifest(sizes)
    for index in range(5):
        assert list(shard_work(rows, index, 5, sizes=lambda: iter(sizes))) == list(shard_work(rows, index, 5))


@pytest.mark.parametrize("count", [1, 2, 5, 16])
def test_every_row_lands_in_exactly_one_shard_in_manifest_order(count):
    sizes = _random_sizes(3000) + [LARGE] * 3 + [None] * 50
    rows = _manifest(sizes)
    shards = _shards(rows, count)

    every = [row for shard in shards for row in shard]
    assert Counter(every) == Counter(rows())  # each row exactly once
    assert len(every) == len(sizes)
    for shard in shards:
        assert [row.line for row in shard] == sorted(row.line for row in shard)


def test_plan_matches_the_shards_workers_recompute():
    rows = _manifest(_random_sizes(1500) + [LARGE, None, LARGE])
    plan = plan_shards(rows, 6)
    shards = _shards(rows, 6)
    assert plan.rows == [len(shard) for shard in shards]
    assert plan.bytes == [sum(row.size or 0 for row in shard) for shard in shards]
    assert (plan.shard_count, plan.large_objects, plan.dedicated_shards, plan.unknown_sizes) == (6, 2, 2, 1)


def test_balance_is_within_one_object_of_ideal():
    """Greedy least-loaded assignment keeps the heaviest shard within one row's weight of the ideal; in
    bytes that is ideal + the largest object + the per-object cost of an average shard's rows (plus one)."""
    sizes = _random_sizes(5000)
    count = 12
    plan = plan_shards(_manifest(sizes), count)

    ideal = sum(sizes) / count
    bound = ideal + max(sizes) + OBJECT_COST_BYTES * (len(sizes) / count + 1)
    assert max(plan.bytes) <= bound
    assert max(plan.bytes) <= 1.02 * ideal  # and, for this mix of 5,000 objects, within 2% of it
    assert min(plan.bytes) >= 0.98 * ideal


def test_large_objects_get_shards_of_their_own():
    sizes = [1 * GiB] * 40 + [LARGE] + [5 * MiB] * 40 + [LARGE * 2, LARGE * 3]
    rows = _manifest(sizes)
    shards = _shards(rows, 6)

    # the k-th large object, in manifest order, is alone in shard k
    assert [[row.size for row in shard] for shard in shards[:3]] == [[LARGE], [LARGE * 2], [LARGE * 3]]
    rest = [row.size for shard in shards[3:] for row in shard]
    assert sorted(rest) == sorted([1 * GiB] * 40 + [5 * MiB] * 40)
    assert all(shards[3:])
    plan = plan_shards(rows, 6)
    assert (plan.large_objects, plan.dedicated_shards) == (3, 3)


def test_threshold_is_inclusive_and_configurable():
    rows = _manifest([10 * MiB, 20 * MiB, 1 * MiB, 1 * MiB])
    plan = plan_shards(rows, 3, large_object_bytes=10 * MiB)
    assert (plan.large_objects, plan.dedicated_shards) == (2, 2)
    assert plan.rows == [1, 1, 2]
    assert plan_shards(rows, 3).large_objects == 0  # the default threshold is far higher
    assert DEFAULT_LARGE_OBJECT_BYTES == 64 * GiB


def test_as_many_large_objects_as_shards_and_nothing_else():
    plan = plan_shards(_manifest([LARGE] * 4), 4)
    assert (plan.rows, plan.dedicated_shards) == ([1, 1, 1, 1], 4)


def test_no_room_left_for_the_rest_spreads_everything():
    """N large objects plus small rows in N shards: dedicating every shard would leave no shard for the small
    rows, so all rows are spread greedily instead."""
    sizes = [LARGE] * 3 + [1 * GiB] * 30
    plan = plan_shards(_manifest(sizes), 3)
    assert (plan.large_objects, plan.dedicated_shards) == (3, 0)
    assert sorted(plan.rows) == [11, 11, 11]
    assert plan.bytes == [LARGE + 10 * GiB] * 3


def test_more_large_objects_than_shards_are_spread_by_least_load():
    sizes = [LARGE, 2 * LARGE, 3 * LARGE, LARGE, LARGE] + [1 * GiB] * 4
    rows = _manifest(sizes)
    shards = _shards(rows, 3)
    plan = plan_shards(rows, 3)

    assert (plan.large_objects, plan.dedicated_shards) == (5, 0)
    # Greedy in manifest order (every row also weighs OBJECT_COST_BYTES): 100 -> 0, 200 -> 1, 300 -> 2,
    # 100 -> 0 (100 < 200), 100 -> 1 (200 + one cost < 200 + two costs), then the 1 GiB rows all go to
    # shard 0, still the lightest.
    assert [[row.size for row in shard] for shard in shards] == [
        [LARGE, LARGE] + [1 * GiB] * 4,
        [2 * LARGE, LARGE],
        [3 * LARGE],
    ]
    assert plan.rows == [6, 2, 1]


def test_unknown_sizes_are_balanced_by_count():
    rows = _manifest([None] * 100)
    plan = plan_shards(rows, 8)
    assert sorted(plan.rows) == [12, 12, 12, 12, 13, 13, 13, 13]
    assert plan.rows == [13, 13, 13, 13, 12, 12, 12, 12]  # ties go to the lowest shard index
    assert plan.bytes == [0] * 8
    assert plan.unknown_sizes == 100
    assert UNKNOWN_SIZE_BYTES > 0


def test_unknown_sizes_weigh_like_a_small_object():
    """One 100 MiB object, then 60 rows of unknown size weighing 1 MiB + 1 MiB of per-object cost each: the
    second shard takes them until it outweighs the first (51 rows, 102 MiB > 101 MiB), then they alternate."""
    assert UNKNOWN_SIZE_BYTES == OBJECT_COST_BYTES == 1 * MiB
    plan = plan_shards(_manifest([100 * MiB] + [None] * 60), 2)
    assert plan.rows == [1 + 5, 51 + 4]


def test_zero_byte_objects_are_spread_by_count():
    plan = plan_shards(_manifest([0] * 90), 3)
    assert plan.rows == [30, 30, 30]


def test_single_shard_takes_everything():
    sizes = _random_sizes(100) + [LARGE, None]
    plan = plan_shards(_manifest(sizes), 1)
    assert plan == ShardPlan(
        shard_count=1,
        rows=[102],
        bytes=[sum(sizes[:-1])],
        large_objects=1,
        dedicated_shards=0,
        unknown_sizes=1,
    )
    assert list(shard_rows(_manifest(sizes), 0, 1)) == list(_manifest(sizes)())


def test_more_shards_than_rows_leaves_empty_shards():
    rows = _manifest([5, 5, 5])
    shards = _shards(rows, 10)
    assert [len(shard) for shard in shards] == [1, 1, 1] + [0] * 7
    assert plan_shards(_manifest([]), 4).rows == [0, 0, 0, 0]


def test_manifest_is_read_twice_and_lazily():
    calls = []

    def rows():
        calls.append(1)
        return iter([ManifestRow("bkt", "a", size=1), ManifestRow("bkt", "b", size=1)])

    shard = shard_rows(rows, 1, 2)
    assert calls == []  # nothing is read until the shard is iterated
    assert [row.key for row in shard] == ["b"]
    assert len(calls) == 2


def test_a_manifest_that_changes_between_passes_is_detected():
    reads = iter([[ManifestRow("bkt", "a", size=1)], [ManifestRow("bkt", "a", size=1), ManifestRow("bkt", "b")]])
    with pytest.raises(ManifestChangedError, match=r"the first read 1 rows \(0 large\), the second more"):
        plan_shards(lambda: iter(next(reads)), 2)

    reads = iter([[ManifestRow("bkt", "a", size=LARGE)], [ManifestRow("bkt", "a", size=1)]])
    with pytest.raises(ManifestChangedError, match=r"the first read 1 rows \(1 large\), the second 1 rows \(0 large\)"):
        list(shard_rows(lambda: iter(next(reads)), 0, 2))

    # Extra large objects on the second pass would overflow the dedicated shards: stop at the first one.
    reads = iter([[ManifestRow("bkt", "a", size=LARGE)], [ManifestRow("bkt", k, size=LARGE) for k in "abc"]])
    with pytest.raises(ManifestChangedError, match=r"the first read 1 rows \(1 large\), the second more"):
        plan_shards(lambda: iter(next(reads)), 2)


@pytest.mark.parametrize(
    ("index", "count", "large", "message"),
    [
        (0, 0, GiB, "shard_count must be at least 1, got 0"),
        (0, -3, GiB, "shard_count must be at least 1, got -3"),
        (4, 4, GiB, r"shard_index must be between 0 and 3 \(shard_count - 1\), got 4"),
        (-1, 4, GiB, r"shard_index must be between 0 and 3 \(shard_count - 1\), got -1"),
        (0, 4, 0, "large_object_bytes must be at least 1, got 0"),
    ],
)
def test_bad_arguments_are_rejected_before_reading(index, count, large, message):
    def never():
        raise AssertionError("the manifest was read")

    with pytest.raises(ValueError, match=message):
        shard_rows(never, index, count, large_object_bytes=large)
    if "shard_index" not in message:
        with pytest.raises(ValueError, match=message):
            plan_shards(never, count, large_object_bytes=large)
