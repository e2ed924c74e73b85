"""S3's multipart limits and the part-size rule for multipart copies."""

from __future__ import annotations

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


class ObjectTooLargeError(ValueError):
    """The object is larger than S3's maximum object size, so no part size can copy it."""


def choose_part_size(object_size: int, preferred_part_size: int) -> int:
    """The part size for copying ``object_size`` bytes: ``preferred_part_size`` unless that would need more
    than 10,000 parts, in which case the smallest whole-MiB size that fits in 10,000 parts; always within
    S3's 5 MiB to 5 GiB bounds. Raises ``ObjectTooLargeError`` above ``MAX_OBJECT_SIZE``.
    """
    if object_size > MAX_OBJECT_SIZE:
        raise ObjectTooLargeError(
            f"object of {object_size:,} bytes exceeds S3's maximum object size of {MAX_OBJECT_SIZE:,} bytes "
            f"({MAX_PARTS:,} parts of {MAX_PART_SIZE:,} bytes)"
        )
    part_size = min(max(preferred_part_size, MIN_PART_SIZE), MAX_PART_SIZE)
    if -(-object_size // part_size) > MAX_PARTS:
        smallest = -(-object_size // MAX_PARTS)
        part_size = min(-(-smallest // MiB) * MiB, MAX_PART_SIZE)
    return part_size


def part_ranges(object_size: int, part_size: int) -> Iterator[tuple[int, int, int]]:
    """``(part_number, first_byte, last_byte)`` for each part, inclusive ranges as ``CopySourceRange`` wants."""
    for number, first in enumerate(range(0, object_size, part_size), start=1):
        yield number, first, min(first + part_size, object_size) - 1
