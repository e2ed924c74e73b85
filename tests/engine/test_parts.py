"""The part-size rule: never more than 10,000 parts (nor more than the fastest count), never under 5 MiB, never
over 5 GiB."""

import pytest

from mxtransfer_worker.parts import (
    GiB, MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB, ObjectTooLargeError, TiB,
    choose_part_size, fastest_part_count, part_ranges, parts_in_flight,
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
    ranges = list(part_ranges(12 * MiB + 1, 5 * MiB))
    assert ranges == [(1, 0, 5 * MiB - 1), (2, 5 * MiB, 10 * MiB - 1), (3, 10 * MiB, 12 * MiB)]
    assert list(part_ranges(0, 5 * MiB)) == []


def test_the_fastest_part_count_and_the_parts_in_flight_follow_s3s_rate_and_stream_bandwidth():
    # 1 TiB at 3,500 requests/s and 90 MB/s per stream: sqrt(3,500 x 1 TiB / 90 MB/s) parts, each ~1.9 s long,
    # so ~6,600 of them in flight keep the prefix at its rate
    assert fastest_part_count(1 * TiB) == 6539
    assert parts_in_flight(161 * MiB) == 6636
    assert parts_in_flight(64 * MiB) == 2680
