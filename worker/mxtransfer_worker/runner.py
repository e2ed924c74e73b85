"""Run many object copies at once: a bounded pool of object threads sharing one pool of part threads."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable

from .copier import CopyResult, ObjectCopier
from .manifest import ManifestRow
from .options import CopyOptions


def copy_rows(client, rows: Iterable[ManifestRow], options: CopyOptions,
              on_result: Callable[[CopyResult], None]) -> None:
    """Copy every row, ``options.object_concurrency`` objects at a time, and hand each result to ``on_result``
    (always called from this thread, in completion order). Rows are pulled lazily, so a manifest of millions of
    rows never sits in memory. Object threads wait on part threads, never the reverse, so the pools cannot
    deadlock."""
    window = 2 * options.object_concurrency
    with ThreadPoolExecutor(options.part_concurrency, thread_name_prefix="mxtransfer-part") as part_pool, \
            ThreadPoolExecutor(options.object_concurrency, thread_name_prefix="mxtransfer-object") as object_pool:
        copier = ObjectCopier(client, options, part_pool)
        in_flight: set[Future] = set()

        def drain(until: int) -> None:
            nonlocal in_flight
            while len(in_flight) > until:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_result(future.result())

        for row in rows:
            drain(window - 1)
            in_flight.add(object_pool.submit(copier.copy, row))
        drain(0)
