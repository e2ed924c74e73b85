"""The limits the benchmark rows are measured against: a bound no client can beat under the emulator's model,
which the engine's own plan (a client that can be run) never does beat, and tighter than uniform parts."""

from __future__ import annotations

import math

import pytest

from benchmarks.suite.scenarios import BURST_S, S3_LIKE, TINY, GiB, MiB, TiB, copy_limit, modeled_copy


def _best_uniform(size: int, settings: dict) -> float:
    """The soonest one object ends with one common part size, all parts in flight (the limit before tapering)."""
    latency, rate, bandwidth = settings["latency_s"], settings["write_rate"], settings["copy_bandwidth"]
    return min(3 * latency + max(0, parts + 2 - rate * BURST_S) / rate + math.ceil(size / parts) / bandwidth
               for parts in range(math.ceil(size / (5 * GiB)), 10_001))


@pytest.mark.parametrize("size, limit, uniform", [(1 * TiB, 1.886, 2.80), (5 * TiB, 6.772, 8.03)])
def test_tapered_parts_bound_a_large_copy_below_uniform_ones(size, limit, uniform):
    seconds, derivation = copy_limit([("big/object", size)], S3_LIKE)
    assert (round(seconds, 3), round(_best_uniform(size, S3_LIKE), 2)) == (limit, uniform)
    assert "those sent later copy fewer bytes" in derivation


@pytest.mark.parametrize("size", [6 * GiB, 200 * GiB, 1 * TiB, 5 * TiB, 20 * TiB])
@pytest.mark.parametrize("settings", [S3_LIKE, {**S3_LIKE, "latency_s": 0.05, "copy_bandwidth": 85e6}])
def test_the_engines_plan_never_beats_the_limit(size, settings):
    # the limit lets parts go down to S3's 5 MiB; the engine's stay at its 64 MiB part size, so objects that fit
    # in the first second's parts take it longer (200 GiB: 0.87 s against 0.60); from 1 TiB on, nearly the limit
    limit, _ = copy_limit([("big/object", size)], settings)
    modeled, _ = modeled_copy(size, 1, settings)
    assert limit <= modeled
    if size >= 1 * TiB:  # and the two requests the engine makes besides create and complete (HEADs, ListParts)
        assert modeled <= 1.15 * limit + 2 * settings["latency_s"]


def test_instant_copies_are_bound_by_their_requests():
    # no bandwidth: 1 GiB objects are one CopyObject each; a 6 GiB one needs create, 2 parts and complete
    assert copy_limit([("small/a", 1 * GiB), ("small/b", 1 * GiB)], TINY)[0] == pytest.approx(TINY["latency_s"])
    assert copy_limit([("big/object", 6 * GiB)], TINY)[0] == pytest.approx(3 * TINY["latency_s"])
    many = [("small/%06d" % index, MiB) for index in range(3500 + 700)]
    assert copy_limit(many, TINY)[0] == pytest.approx(700 / 3500 + TINY["latency_s"])
