"""S3's multipart limits and the part-size rule for multipart copies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
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

#: The model parts are planned for: S3 takes 3,500 writes per second per prefix, a copy stream moves about
#: 90 MB/s (AWS's guidance: 85-90 MB/s per connection).
PREFIX_WRITE_RATE = 3500
STREAM_BANDWIDTH = 90e6
#: The share of ``PREFIX_WRITE_RATE`` one object's part copies are sent at (``ObjectCopier._part_turns``): requests
#: reach S3 less evenly than they leave.
PART_RATE_SHARE = 0.95
#: Part copies of one object sent per second, a second's worth at once (``ObjectCopier._part_turns``).
PART_RATE = PREFIX_WRITE_RATE * PART_RATE_SHARE
#: Seconds at least between the sends of parts that wait for their turns: the turns that came due meanwhile go out
#: together. awscrt's event loop waits for its next task in whole milliseconds and polls without sleeping when it is
#: under one away; every connection has a task once a second (its throughput monitor's statistics), so connections
#: opened one turn (0.29 ms) apart kept it polling for the whole copy: parts sent every 10 ms cut the worker's CPU
#: for a 1 TiB copy from 3.1-3.4 to 2.1-2.2 s and for 5 TiB from 5.7-5.9 to 3.8-4.3 s (``benchmarks.worker_phases``),
#: the wall time unchanged. Each part goes out at most that much later.
PART_BATCH_SECONDS = 0.01


class ObjectTooLargeError(ValueError):
    """The object is larger than S3's maximum object size, so no part size can copy it."""


def check_object_size(object_size: int) -> None:
    """Raise ``ObjectTooLargeError`` when ``object_size`` is above ``MAX_OBJECT_SIZE``: no parts can copy it."""
    if object_size > MAX_OBJECT_SIZE:
        raise ObjectTooLargeError(
            f"object of {object_size:,} bytes exceeds S3's maximum object size of {MAX_OBJECT_SIZE:,} bytes "
            f"({MAX_PARTS:,} parts of {MAX_PART_SIZE:,} bytes)"
        )


def choose_part_size(object_size: int, preferred_part_size: int) -> int:
    """The part size for copying ``object_size`` bytes: ``preferred_part_size`` unless that would need more
    parts than ``fastest_part_count`` (or 10,000), in which case the smallest whole-MiB size that fits in that
    many; always within S3's 5 MiB to 5 GiB bounds. Raises ``ObjectTooLargeError`` above ``MAX_OBJECT_SIZE``.
    """
    check_object_size(object_size)
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


@dataclass(frozen=True)
class PartPlan:
    """How a multipart copy cuts an object: the first ``steady`` parts of ``head`` bytes, then each part ``step``
    bytes smaller than the one before, down to ``smallest``; the last part is what is left. With ``step`` 0 every
    part is ``head`` bytes (a uniform plan: ``PartPlan(size, part_size)``)."""

    object_size: int
    head: int
    steady: int = 0
    step: int = 0
    smallest: int = 0

    def sizes(self) -> Iterator[int]:
        """Each part's size, in order."""
        left, index = self.object_size, 0
        while left > 0:
            nominal = self.head if index < self.steady or not self.step else max(
                self.smallest, self.head - self.step * (index + 1 - self.steady))
            yield min(nominal, left)
            left -= nominal
            index += 1

    def ranges(self) -> Iterator[tuple[int, int, int]]:
        """``(part_number, first_byte, last_byte)`` for each part, inclusive ranges as ``CopySourceRange`` wants."""
        first = 0
        for number, size in enumerate(self.sizes(), start=1):
            yield number, first, first + size - 1
            first += size

    @cached_property
    def count(self) -> int:
        """How many parts."""
        if not self.step:
            return -(-self.object_size // self.head)
        return sum(1 for _ in self.sizes())


def tapered_plan(object_size: int, smallest_part: int) -> PartPlan:
    """The parts that copy ``object_size`` bytes soonest when they are sent at ``PART_RATE`` (a second's worth at
    once) and each takes its bytes at ``STREAM_BANDWIDTH``: parts sent later are smaller by the bytes a stream
    moves in the time between two sends, so that they all end together. Uniform parts of ``fastest_part_count``
    end when the last one sent does, a whole part's time after the sends stop; this ends about a third sooner
    for 1 TiB (2.0 s instead of 2.9 at 90 MB/s). No part is under ``smallest_part`` (but the last) nor over
    5 GiB, and there are at most 10,000 (so the largest objects get nearly uniform parts); an object that fits
    in the first second's parts gets uniform parts of ``smallest_part``. Raises ``ObjectTooLargeError`` above
    ``MAX_OBJECT_SIZE``."""
    check_object_size(object_size)
    smallest = min(max(smallest_part, MIN_PART_SIZE), MAX_PART_SIZE)
    burst, step = int(PART_RATE), int(STREAM_BANDWIDTH / PART_RATE)

    def shape(ideal_head: int) -> tuple[int, int]:
        """Head size and steady count for parts ideally ``ideal_head`` bytes at first: those over 5 GiB are cut
        to 5 GiB, and sent in the first second or while the ideal size is over 5 GiB."""
        if ideal_head <= MAX_PART_SIZE:
            return ideal_head, burst
        return MAX_PART_SIZE, min(MAX_PARTS, burst + -(-(ideal_head - MAX_PART_SIZE) // step))

    def covered(ideal_head: int) -> int:
        """Bytes the parts ending no later than the first parts (so none under ``smallest``) cover."""
        head, steady = shape(ideal_head)
        tapering = min(MAX_PARTS - steady, max(0, (head - step - smallest) // step + 1))
        return steady * head + tapering * (head - step) - step * tapering * (tapering - 1) // 2

    if object_size <= burst * smallest:
        return PartPlan(object_size, smallest)
    low, high = smallest, MAX_PARTS * MAX_PART_SIZE  # covered(low) < object_size <= covered(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if covered(middle) >= object_size else (middle, high)
    head, steady = shape(high)
    return PartPlan(object_size, head, steady, step, smallest)
