"""S3's multipart limits and the part-size rule for multipart copies."""

from __future__ import annotations

import math
from typing import Iterator

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
#: Largest object S3 stores: 10,000 parts of 5 GiB (48.8 TiB), raised from 5 TB in December 2025.
MAX_OBJECT_SIZE = MAX_PARTS * MAX_PART_SIZE
#: Largest object a single CopyObject request may copy.
MAX_COPY_OBJECT_SIZE = 5 * GiB

#: The model part sizes and parts in flight are chosen for: S3 takes 3,500 writes per second per prefix, a copy
#: stream moves about 90 MB/s (AWS's guidance: 85-90 MB/s per connection), a request waits tens of ms.
PREFIX_WRITE_RATE = 3500
STREAM_BANDWIDTH = 90e6
REQUEST_LATENCY = 0.02
#: The share of ``PREFIX_WRITE_RATE`` one object's part copies are sent at (``ObjectCopier._part_turns``): requests
#: reach S3 less evenly than they leave.
PART_RATE_SHARE = 0.95


class ObjectTooLargeError(ValueError):
    """The object is larger than S3's maximum object size, so no part size can copy it."""


def choose_part_size(object_size: int, preferred_part_size: int) -> int:
    """The part size for copying ``object_size`` bytes: ``preferred_part_size`` unless that would need more
    parts than ``fastest_part_count`` (or 10,000), in which case the smallest whole-MiB size that fits in that
    many; always within S3's 5 MiB to 5 GiB bounds. Raises ``ObjectTooLargeError`` above ``MAX_OBJECT_SIZE``.
    """
    if object_size > MAX_OBJECT_SIZE:
        raise ObjectTooLargeError(
            f"object of {object_size:,} bytes exceeds S3's maximum object size of {MAX_OBJECT_SIZE:,} bytes "
            f"({MAX_PARTS:,} parts of {MAX_PART_SIZE:,} bytes)"
        )
    part_size = min(max(preferred_part_size, MIN_PART_SIZE), MAX_PART_SIZE)
    most = min(MAX_PARTS, fastest_part_count(object_size))
    if -(-object_size // part_size) > most:
        smallest = -(-object_size // most)
        part_size = min(-(-smallest // MiB) * MiB, MAX_PART_SIZE)
    return part_size


def fastest_part_count(object_size: int) -> int:
    """The part count that copies ``object_size`` bytes soonest with every part in flight at once: n parts take
    n / ``PREFIX_WRITE_RATE`` seconds to send and size / (n × ``STREAM_BANDWIDTH``) to copy, least at
    n = √(rate × size / bandwidth) (6,539 parts of 160 MiB for 1 TiB). More parts only add requests."""
    return max(1, math.isqrt(PREFIX_WRITE_RATE * object_size // int(STREAM_BANDWIDTH)))


def parts_in_flight(part_size: int) -> int:
    """Part copies to keep in flight so that they are sent at the prefix's write rate: the rate times how long
    one part takes (latency + bytes at the stream's bandwidth): 2,700 for parts of 64 MiB, 6,600 for 160 MiB."""
    return math.ceil(PREFIX_WRITE_RATE * (REQUEST_LATENCY + part_size / STREAM_BANDWIDTH))


def part_ranges(object_size: int, part_size: int) -> Iterator[tuple[int, int, int]]:
    """``(part_number, first_byte, last_byte)`` for each part, inclusive ranges as ``CopySourceRange`` wants."""
    for number, first in enumerate(range(0, object_size, part_size), start=1):
        yield number, first, min(first + part_size, object_size) - 1
