"""The benchmark scenarios (full and ``--tiny`` sizes), their emulator settings and their theoretical limits.

The limits assume unlimited connections (server-side copies move no bytes through the client) and are set by
the emulator's model alone: every request waits the latency, a copy of n bytes also n / bandwidth, and each
prefix (first key segment) takes at most ``write_rate`` writes and ``read_rate`` reads per second beyond a
burst of ``rate_burst_s`` seconds' worth (the emulator's token buckets start full).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from benchmarks.s3emulator import EmulatorConfig

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4
MAX_COPY_OBJECT = 5 * GiB
MIN_PART, MAX_PART, MAX_PARTS = 5 * MiB, 5 * GiB, 10_000
PAGE_KEYS = 1000
#: Seconds of requests the emulator's token buckets hold at the start.
BURST_S = EmulatorConfig().rate_burst_s

#: S3-like settings: 20 ms per request, 90 MB/s per copy stream, 3,500 writes and 5,500 reads/s per prefix.
S3_LIKE = {"latency_s": 0.020, "copy_bandwidth": 90e6, "write_rate": 3500.0, "read_rate": 5500.0,
           "small_object_max": 64 * MiB}
#: The slow end of S3's speeds (tens of ms per request, 85-90 MB/s per stream), for the modeled large-object times.
S3_SLOW_END = {"latency_s": 0.050, "copy_bandwidth": 85e6}


def speeds(settings: dict) -> str:
    """``settings``' latency and stream bandwidth, as the modeled times state them: "20 ms and 90 MB/s"."""
    return f"{settings['latency_s'] * 1000:.0f} ms and {settings['copy_bandwidth'] / 1e6:.0f} MB/s"


#: Latency of the inventory scenario: the goal is stated against one sequential listing at 50 ms per request.
LISTING_LATENCY_S = 0.050
LISTING_NOTES = ["the engine's rows write the listing into an uploaded manifest, as GenerateInventoryOperator does;"
                 " its first row lists one page at a time through boto3 (the sequential listing)",
                 "the emulator renders each key's listing XML once, while the bucket is filled (outside the runs),"
                 " and joins those for each page"]
#: The fleet's ceiling, scaled down 7x from S3's so that processes on two cores can reach it.
FLEET_CEILING = {"write_rate": 500.0, "read_rate": 500.0 * 5500 / 3500}
FLEET_NOTE = ("tools that can split one bucket's objects between processes only: the engine (shards of one"
              " manifest) and s5cmd (a command file per process); the write ceiling is scaled down 7x")
#: ``--tiny``: short latency and instant copies so that every scenario takes seconds.
TINY = {**S3_LIKE, "latency_s": 0.002, "copy_bandwidth": 0.0}


@dataclass
class Scenario:
    """Objects in the source bucket, how the tools treat them (copy or list), settings and a time cap per run."""

    name: str
    title: str
    objects: list[tuple[str, int]]
    settings: dict
    cap_s: float
    kind: str = "copy"
    #: Worker process counts to run (fleet scenarios); tools that cannot split work run only with 1.
    workers: tuple[int, ...] = (1,)
    #: Whether the peers run too (else the engine's rows only).
    peers: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.objects)

    def limit(self) -> tuple[float, str]:
        """The shortest wall time the settings allow, and how it follows from them."""
        if self.kind == "list":
            return listing_limit(self.objects, self.settings)
        return copy_limit(self.objects, self.settings)


def _prefix(key: str) -> str:
    return key.partition("/")[0]


def copy_limit(objects: list[tuple[str, int]], settings: dict) -> tuple[float, str]:
    """Per prefix, the slowest: for objects up to 5 GiB (one CopyObject each), requests / write rate plus the
    longest single request; with larger ones (parts), create, the parts and complete, the parts cut so that
    they all end together (``tapered_streams``) and no fewer than 5 GiB parts allow."""
    latency, bandwidth, rate = settings["latency_s"], settings["copy_bandwidth"], settings["write_rate"]
    burst = rate * BURST_S

    def queued(requests: int) -> float:
        return max(0, requests - burst) / rate
    stream = (lambda nbytes: nbytes / bandwidth) if bandwidth else (lambda nbytes: 0.0)
    by_prefix: dict[str, list[int]] = defaultdict(list)
    for key, size in objects:
        by_prefix[_prefix(key)].append(size)
    worst, text = 0.0, ""
    for prefix, sizes in by_prefix.items():
        small = [size for size in sizes if size <= MAX_COPY_OBJECT]
        large = [size for size in sizes if size > MAX_COPY_OBJECT]
        if not large:
            seconds = queued(len(small)) + latency + stream(max(small))
            about = (f"prefix {prefix}/: ({len(small):,} copy requests - a burst of {burst:,.0f}) / {rate:,.0f} per s"
                     f" + the longest request ({latency * 1000:.0f} ms + bytes at {bandwidth / 1e6:,.0f} MB/s)")
        else:
            fewest = len(small) + sum(math.ceil(size / MAX_PART) for size in large)
            sending, used = 0.0, fewest
            if bandwidth:
                sending, used = tapered_streams(sum(sizes) / bandwidth, len(small) + MAX_PARTS * len(large), burst,
                                                rate, MIN_PART / bandwidth, MAX_PART / bandwidth)
            seconds = 3 * latency + max(sending, queued(fewest + 2 * len(large)))
            about = (f"prefix {prefix}/: {len(large)} multipart copies: create, then {used:,} copy requests sent at"
                     f" {rate:,.0f} per s after a burst of {burst:,.0f}, each ending {sending:.2f} s after the first"
                     f" is sent (those sent later copy fewer bytes, at {bandwidth / 1e6:,.0f} MB/s, none under 5 MiB),"
                     f" then complete; {latency * 1000:.0f} ms per request")
        if seconds > worst:
            worst, text = seconds, about
    return worst, text


def tapered_streams(work_s: float, requests: int, burst: float, rate: float, smallest_s: float,
                    largest_s: float) -> tuple[float, int]:
    """The soonest ``work_s`` seconds of copy streams can end when at most ``requests`` are sent at a prefix's
    pace (``burst`` at once, then ``rate`` per second) and each takes ``smallest_s`` to ``largest_s`` seconds
    of them: a request sent t seconds after the first ends by u if it takes at most u - t, so the least u
    whose requests take ``work_s`` in all. A bound on any client: parts cut into any sizes, none at a
    different moment than the pace allows. Returns u and the requests it takes."""
    at_once = min(requests, int(burst))

    def carried(until: float) -> tuple[float, int]:
        if min(largest_s, until) < smallest_s:
            return 0.0, 0
        later = max(0, min(requests - at_once, int((until - smallest_s) * rate)))  # the k-th later: k / rate
        full = min(later, max(0, int((until - largest_s) * rate)))  # those that can still take largest_s
        tapering = later - full
        seconds = (at_once + full) * min(largest_s, until) + tapering * until - (
            later * (later + 1) - full * (full + 1)) / 2 / rate
        return seconds, at_once + later

    low, high = 0.0, work_s / max(1, at_once) + requests / rate + largest_s
    while high - low > 1e-4:
        middle = (low + high) / 2
        low, high = (low, middle) if carried(middle)[0] >= work_s else (middle, high)
    return high, carried(high)[1]


#: Worker processes that split one large object's parts in the ``large``/``huge`` rows and the model below.
SPLIT_WORKERS = 4
SPLIT_NOTE = (f"the engine's last row runs {SPLIT_WORKERS} worker processes as shards of one array job with"
              " `--split-objects-over 1GiB`: each copies a run of the object's parts into one shared upload, the last"
              " to finish completes it")
#: Published single-object times of the reference tool (MediaSync): 1 TB in 11 minutes, 5 TB in 27.
PUBLISHED_S = {1 * TiB: 11 * 60, 5 * TiB: 27 * 60}


def modeled_copy(size: int, workers: int, settings: dict, part_concurrency: int | None = None,
                 part_size: int | None = None) -> tuple[float, str]:
    """Seconds the engine needs for one object of ``size`` bytes with its parts split between ``workers``, under
    ``settings``: parts as the engine cuts them (``tapered_plan`` on one worker, uniform ``choose_part_size`` ones
    split between several), each worker keeping as many in flight as it does (``part_concurrency``, at most
    its part count: the engine's defaults unless given); a part starts when a place in flight is free,
    the engine's pace lets it (``PART_RATE``, a second's worth at once) and the prefix has a token (its burst,
    then ``write_rate`` per second), and takes latency + bytes / bandwidth; plus 5 requests one after another
    (the HEADs and the create before, ListParts and the completion after). Returns the seconds and how they
    follow."""
    from mxtransfer_worker.options import CopyOptions
    from mxtransfer_worker.parts import PART_RATE, PartPlan, choose_part_size, tapered_plan

    defaults = CopyOptions(destination_bucket="model")
    smallest = part_size or defaults.part_size
    plan = tapered_plan(size, smallest) if workers == 1 else PartPlan(size, choose_part_size(size, smallest))
    per_worker = min(part_concurrency or defaults.part_concurrency, plan.count)
    window = workers * per_worker
    latency, rate, bandwidth = settings["latency_s"], settings["write_rate"], settings["copy_bandwidth"]
    burst = rate * BURST_S
    finish: list[float] = []
    parts = list(plan.sizes())
    for index, part in enumerate(parts):
        start = max(0.0, (index + 1 - burst) / rate, (index + 1 - PART_RATE) / PART_RATE)
        if index >= window:
            start = max(start, finish[index - window])
        finish.append(start + latency + part / bandwidth)
    seconds = 5 * latency + max(finish)
    least = min(parts[:-1] or parts)  # the smallest part but the last
    sizes = f"{plan.head / MiB:,.0f}" + (f" down to {least / MiB:,.0f}" if least < plan.head else "")
    return seconds, (f"{plan.count:,} parts of {sizes} MiB, {workers} worker(s) × {per_worker:,} in flight,"
                     f" sent at up to {min(rate, PART_RATE):,.0f}/s after a burst of {min(burst, PART_RATE):,.0f}, each"
                     f" taking {latency * 1000:.0f} ms + bytes at {bandwidth / 1e6:,.0f} MB/s: the last done at"
                     f" {max(finish):.2f} s, + 5 requests × {latency * 1000:.0f} ms")


def listing_limit(objects: list[tuple[str, int]], settings: dict) -> tuple[float, str]:
    """A prefix's pages follow one another (each needs the previous continuation token), but the key ranges of a
    prefix can be listed at once: one delimited listing, then every page with the engine's requests in flight;
    sequentially, all pages × latency."""
    from mxtransfer_worker.listing import DEFAULT_LISTING_CONCURRENCY

    latency = settings["latency_s"]
    pages = _pages(objects)
    rounds = math.ceil(pages / DEFAULT_LISTING_CONCURRENCY)
    parallel = latency * (1 + rounds)
    return parallel, (f"1 delimited listing + {pages:,} pages in {rounds:,} rounds of {DEFAULT_LISTING_CONCURRENCY}"
                      f" requests in flight × {latency * 1000:.0f} ms (one sequential listing: {pages:,} pages ×"
                      f" {latency * 1000:.0f} ms = {latency * pages:.1f} s)")


def sequential_listing_s(objects: list[tuple[str, int]], settings: dict) -> float:
    """The least one sequential listing of ``objects`` takes: every page one after another, a latency each."""
    return _pages(objects) * settings["latency_s"]


def _pages(objects: list[tuple[str, int]]) -> int:
    """Listing pages of ``objects``, each prefix's keys on pages of their own."""
    counts: dict[str, int] = defaultdict(int)
    for key, _ in objects:
        counts[_prefix(key)] += 1
    return sum(math.ceil(count / PAGE_KEYS) for count in counts.values())


def fleet_keys(count: int, prefixes: int) -> list[tuple[str, int]]:
    """The fleet scenarios' objects: ``count`` objects of 1 MiB, in ``fleet/`` or, one after another, in
    ``fleet0/`` to ``fleet<prefixes - 1>/``."""
    return [(f"fleet{index % prefixes if prefixes > 1 else ''}/{index:06d}", MiB) for index in range(count)]


def scenarios(tiny: bool) -> list[Scenario]:
    """Every scenario at full or tiny scale."""
    settings = TINY if tiny else S3_LIKE
    big, bigger = (1 * GiB, 6 * GiB) if tiny else (1 * TiB, 5 * TiB)
    small_count = 200 if tiny else 100_000
    masters, proxies, sidecars = (1, 20, 200) if tiny else (3, 2000, 20_000)
    master_size = 1 * GiB if tiny else 200 * GiB
    keys = 5_000 if tiny else 1_000_000
    fleet_objects, fleet_workers = (200, (1, 2)) if tiny else (8_000, (1, 2, 4, 8))
    caps = {"large": 40, "small": 90, "mix": 60, "inventory": 60, "fleet": 30}
    if tiny:
        caps = dict.fromkeys(caps, 60)
    fleet_settings = {**settings, **FLEET_CEILING}
    listing_settings = settings if tiny else {**settings, "latency_s": LISTING_LATENCY_S}
    return [
        Scenario("large", f"one {big / GiB:,.0f} GiB object", [("big/object", big)], settings, caps["large"],
                 notes=[SPLIT_NOTE]),
        Scenario("huge", f"one {bigger / GiB:,.0f} GiB object", [("big/object", bigger)], settings, caps["large"],
                 notes=[SPLIT_NOTE]),
        Scenario("small", f"{small_count:,} objects of 1 MiB",
                 [(f"small/{index:07d}", MiB) for index in range(small_count)], settings, caps["small"]),
        Scenario("mix", f"media mix: {masters} masters of {master_size / GiB:,.0f} GiB, {proxies:,} proxies of"
                        f" 50 MiB, {sidecars:,} sidecars of 16 KiB",
                 [(f"masters/{index:03d}.mxf", master_size) for index in range(masters)]
                 + [(f"proxies/{index:05d}.mp4", 50 * MiB) for index in range(proxies)]
                 + [(f"sidecars/{index:06d}.xml", 16 * KiB) for index in range(sidecars)],
                 settings, caps["mix"]),
        Scenario("inventory", f"inventory of {keys:,} keys in 16 prefixes",
                 [(f"p{index % 16:02d}/{index:08d}", KiB) for index in range(keys)],
                 listing_settings, caps["inventory"], kind="list", notes=LISTING_NOTES),
        Scenario("inventory-flat", f"inventory of {keys:,} keys in one flat prefix",
                 [(f"flat/{index:08d}", KiB) for index in range(keys)], listing_settings, caps["inventory"],
                 kind="list", peers=False, notes=[*LISTING_NOTES, "no peer runs here: they list a prefix in one"
                                                  " sequence of pages, as in the 16-prefix section"]),
        Scenario("fleet-one-prefix", f"fleet: {fleet_objects:,} objects of 1 MiB in one prefix",
                 fleet_keys(fleet_objects, 1), fleet_settings, caps["fleet"], workers=fleet_workers,
                 notes=[FLEET_NOTE]),
        Scenario("fleet-8-prefixes", f"fleet: {fleet_objects:,} objects of 1 MiB across 8 prefixes",
                 fleet_keys(fleet_objects, 8), fleet_settings, caps["fleet"], workers=fleet_workers,
                 notes=[FLEET_NOTE]),
    ]
