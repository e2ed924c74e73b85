"""Run many object copies at once: a bounded pool of object threads sharing one pool of part threads."""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from .checkpoints import CheckpointStore
from .copier import CopyResult, ObjectCopier, SentCopy, StopSignal
from .crt_copy import CrtCopyClient
from .manifest import ManifestRow
from .options import CopyOptions
from .parts import MiB


def copy_client_for(client, options: CopyOptions) -> CrtCopyClient | None:
    """The client for copy requests (``ObjectCopier``'s ``copy_client``): awscrt's native one built from
    ``client`` with ``options.native_client``, with a connection for each request ``copy_rows`` may have in flight
    (``options.connections`` and ``SENT_COPIES``: awscrt queues those beyond its connections, unpaced, so that parts
    paced to end together start late); else None (``client`` sends them)."""
    return CrtCopyClient(client, options.connections + SENT_COPIES) if options.native_client else None


#: Conditional CopyObjects of objects of at least ``LONG_COPY_BYTES`` in flight at most, besides the rows in
#: ``options.object_concurrency`` (``copy_rows``): such a copy takes no thread and streams for a while (a 50-256
#: MiB object for 0.6-3 s at S3's 85-90 MB/s per stream), so a prefix's 3,500 writes per second need thousands in
#: flight. With 128 rows, the media mix's 2,000 proxies of 50 MiB took 9 s (1.2 s with these). Shorter copies
#: stay in the rows' window: a wider one only sent their requests sooner into S3's throttling (100,000 objects of
#: 1 MiB with 2,048: 13,661 SlowDowns and 40% more CPU).
SENT_COPIES = 2048
#: Objects at least this large take long to copy (8 MiB: 90 ms at 90 MB/s, several requests' latency).
LONG_COPY_BYTES = 8 * MiB


def client_connections(options: CopyOptions) -> int:
    """The connection pool of the botocore client that ``copy_rows`` is given: ``options.connections``, less the
    part threads' when awscrt's native client sends the part copies (``copy_client_for``). urllib3 fills a pool
    of that many slots at its first request to a host and empties it when the client is freed: 11 and 9 ms for
    10,132 connections, against 0.2 ms for 132."""
    return options.connections - options.part_concurrency if options.native_client else options.connections


def copy_rows(client, rows: Iterable[ManifestRow], options: CopyOptions, on_result: Callable[[CopyResult], None],
              checkpoints: CheckpointStore | None = None, stop: StopSignal | None = None, paced: bool = False) -> bool:
    """Copy every row and hand each result to ``on_result`` (always called from this thread, in completion order).
    Rows are pulled lazily, so a manifest of millions of rows never sits in memory. A row that is one conditional
    CopyObject is sent from this thread and finished here when its answer settles it; other rows go to object
    threads, which wait on part threads, never the reverse, so the pools cannot deadlock. At most
    ``options.object_concurrency`` rows are in flight, besides up to ``SENT_COPIES`` sent copies of objects of
    at least ``LONG_COPY_BYTES``. Multipart copies keep ``checkpoints`` (see ``ObjectCopier``). With
    ``options.native_client`` the copy requests go through awscrt's native client (``crt_copy``), everything else
    through ``client``; ``paced``: a request governor paces them (see ``ObjectCopier``).

    Once ``stop`` is requested no more rows are pulled, and rows already pulled but unfinished are reported as
    ``Interrupted``; part requests still in flight after the grace period are abandoned, not awaited. Returns
    whether rows were left unpulled."""
    stop = stop or StopSignal()
    part_pool = ThreadPoolExecutor(options.part_concurrency, thread_name_prefix="mxtransfer-part")
    object_pool = ThreadPoolExecutor(options.object_concurrency, thread_name_prefix="mxtransfer-object")
    copier = ObjectCopier(client, options, part_pool, checkpoints, stop, copy_client_for(client, options), paced)
    # Finished copies queue up as they end: waiting on the set of those in flight (concurrent.futures.wait)
    # locks every future in it at each completion, which costs more CPU than a native copy request. A row that
    # is one conditional CopyObject is sent from this thread (``send_copy``) and its answer queued by awscrt's
    # thread: an object thread per copy in flight cost more CPU than the copy. Object threads take the rows
    # that need more requests or waiting (HEADs, parts, retries after a backoff).
    finished: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = long_copies = 0  # rows in flight (on object threads or sent), and long sent copies besides

    def is_long(sent_row: ManifestRow) -> bool:  # a sent row, whose size the manifest listed
        return sent_row.size >= LONG_COPY_BYTES

    def drain(rows_at_most: int, long_copies_at_most: int) -> None:
        nonlocal in_flight, long_copies
        while in_flight > rows_at_most or long_copies > long_copies_at_most:
            done = finished.get()
            if isinstance(done, SentCopy) and is_long(done.row):
                long_copies -= 1
                in_flight += 1  # it counts as a row again, whether it ends here or on a thread
            result = copier.settled(done) if isinstance(done, SentCopy) else done.result()
            if result is None:
                object_pool.submit(copier.copy, done.row, done).add_done_callback(finished.put)
            else:
                on_result(result)
                in_flight -= 1

    try:
        for row in rows:
            drain(options.object_concurrency - 1, SENT_COPIES - 1)  # room for the row, whichever way it goes
            if stop.requested:
                return True
            if not copier.send_copy(row, finished.put):
                object_pool.submit(copier.copy, row).add_done_callback(finished.put)
                in_flight += 1
            elif is_long(row):
                long_copies += 1
            else:
                in_flight += 1
        return False
    finally:
        drain(0, 0)
        object_pool.shutdown()
        part_pool.shutdown(wait=not stop.expired, cancel_futures=True)
