"""The part-size rules (uniform and tapered): never more than 10,000 parts (uniform: nor more than the fastest
count), never under 5 MiB (tapered: the smallest part asked for), never over 5 GiB."""

import pytest

from mxtransfer_worker.parts import (
    GiB, MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, PART_RATE, STREAM_BANDWIDTH, MiB,
    ObjectTooLargeError, PartPlan, TiB, choose_part_size, fastest_part_count, tapered_plan,
)


@pytest.mark.parametrize("size, preferred, expected_part, expected_parts", [
    (5 * MiB, 64 * MiB, 64 * MiB, 1),
    (5 * GiB, 64 * MiB, 64 * MiB, 80),
    (50 * GiB, 64 * MiB, 64 * MiB, 800),
    (1 * TiB, 64 * MiB, 161 * MiB, 6513),  # 16,384 parts of 64 MiB: more than the fastest count, 6,539
    (5 * TiB, 64 * MiB, 525 * MiB, 9987),
    (MAX_OBJECT_SIZE, 64 * MiB, 5 * GiB, 10_000),
    (MAX_OBJECT_SIZE, 8 * GiB, 5 * GiB, 10_000),
    (50 * GiB, 1 * MiB, 36 * MiB, 1423),  # 5 MiB parts would be 10,240, the fastest count is 1,444
])
def test_part_size_rule(size, preferred, expected_part, expected_parts):
    part = choose_part_size(size, preferred)
    assert part == expected_part
    parts = -(-size // part)
    assert parts == expected_parts
    assert MIN_PART_SIZE <= part <= MAX_PART_SIZE and parts <= MAX_PARTS


def test_48_8_tib_is_the_named_limit():
    assert MAX_OBJECT_SIZE == 10_000 * 5 * GiB
    assert round(MAX_OBJECT_SIZE / TiB, 1) == 48.8


def test_one_byte_over_the_limit_is_a_clear_error():
    with pytest.raises(ObjectTooLargeError, match=r"53,687,091,200,001 bytes exceeds S3's maximum object size"):
        choose_part_size(MAX_OBJECT_SIZE + 1, 64 * MiB)


def test_part_ranges_cover_the_object_exactly():
    ranges = list(PartPlan(12 * MiB + 1, 5 * MiB).ranges())
    assert ranges == [(1, 0, 5 * MiB - 1), (2, 5 * MiB, 10 * MiB - 1), (3, 10 * MiB, 12 * MiB)]
    assert list(PartPlan(0, 5 * MiB).ranges()) == []


def test_the_fastest_part_count_follows_s3s_rate_and_stream_bandwidth():
    # 1 TiB at 3,500 requests/s and 90 MB/s per stream: sqrt(3,500 x 1 TiB / 90 MB/s) parts
    assert fastest_part_count(1 * TiB) == 6539


def _ends(plan: PartPlan) -> list[float]:
    """When each part of ``plan`` ends, sent at ``PART_RATE`` (a second's worth at once), each taking its bytes at
    ``STREAM_BANDWIDTH``."""
    burst = int(PART_RATE)
    return [max(0.0, (index + 1 - burst) / PART_RATE) + size / STREAM_BANDWIDTH
            for index, size in enumerate(plan.sizes())]


@pytest.mark.parametrize("size", [209 * GiB, 1 * TiB, 5 * TiB, 20 * TiB, MAX_OBJECT_SIZE - 1, MAX_OBJECT_SIZE])
def test_a_tapered_plan_covers_the_object_in_shrinking_parts_within_s3s_limits(size):
    plan = tapered_plan(size, 64 * MiB)
    sizes = list(plan.sizes())
    assert sum(sizes) == size and len(sizes) == plan.count <= MAX_PARTS
    assert all(64 * MiB <= part <= MAX_PART_SIZE for part in sizes[:-1]) and 0 < sizes[-1] <= MAX_PART_SIZE
    assert sizes == sorted(sizes, reverse=True)
    ranges = list(plan.ranges())
    assert ranges[0][:2] == (1, 0) and ranges[-1] == (plan.count, size - sizes[-1], size - 1)
    assert all(later[1] == earlier[2] + 1 for earlier, later in zip(ranges, ranges[1:]))


def test_tapered_parts_end_together_and_sooner_than_uniform_ones():
    # 1 TiB: uniform parts of the fastest count (6,513 of 161 MiB) end 2.8 s after the first is sent; tapered
    # ones (7,443, from 170 MiB down to 64 MiB) all end within a few ms of 2.0 s
    tapered = tapered_plan(1 * TiB, 64 * MiB)
    uniform = PartPlan(1 * TiB, choose_part_size(1 * TiB, 64 * MiB))
    ends = _ends(tapered)
    assert (tapered.count, round(max(ends), 2), round(max(_ends(uniform)), 2)) == (7443, 1.98, 2.83)
    assert max(ends) - min(ends[:-1]) < 0.01
    # 5 TiB takes all 10,000 parts; the largest objects need 10,000 of 5 GiB, so they stay uniform
    assert tapered_plan(5 * TiB, 64 * MiB).count == MAX_PARTS
    assert set(tapered_plan(MAX_OBJECT_SIZE, 64 * MiB).sizes()) == {MAX_PART_SIZE}


def test_an_object_sent_in_the_first_second_gets_uniform_parts_of_the_smallest_size():
    assert tapered_plan(200 * GiB, 64 * MiB) == PartPlan(200 * GiB, 64 * MiB)
    assert tapered_plan(2 * GiB, 1 * MiB) == PartPlan(2 * GiB, MIN_PART_SIZE)
    with pytest.raises(ObjectTooLargeError):
        tapered_plan(MAX_OBJECT_SIZE + 1, 64 * MiB)
