"""The AIMD limit on requests in flight, and the request counts that go into the report."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.throttle import AimdLimiter, RequestGovernor

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402


@pytest.fixture
def emulator():
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0) as instance:
        yield instance


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttling_halves_the_limit_once_per_cooldown_down_to_the_floor():
    clock = Clock()
    limiter = AimdLimiter(32, floor=3, cooldown=1.0, clock=clock)
    limiter.throttled()
    limiter.throttled()  # the same burst: no second decrease
    assert limiter.limit == 16
    for _ in range(4):
        clock.now += 1.0
        limiter.throttled()
    assert (limiter.limit, limiter.lowest, limiter.decreases) == (3, 3, 4)  # 8, 4, then the floor 3 twice


def test_successes_climb_back_by_one_per_window_up_to_the_ceiling():
    limiter = AimdLimiter(8, clock=Clock())
    limiter.throttled()
    assert limiter.limit == 4
    for _ in range(3):
        limiter.succeeded()
    assert limiter.limit == 4  # a window is `limit` successes
    limiter.succeeded()
    assert limiter.limit == 5
    for _ in range(100):
        limiter.succeeded()
    assert limiter.limit == 8


def test_a_throttle_restarts_the_window():
    clock = Clock()
    limiter = AimdLimiter(8, clock=clock)
    clock.now = 5.0
    limiter.throttled()
    limiter.succeeded()
    limiter.succeeded()
    limiter.succeeded()
    clock.now = 10.0
    limiter.throttled()
    limiter.succeeded()
    assert limiter.limit == 2


def test_acquire_waits_for_a_slot_under_the_limit():
    limiter = AimdLimiter(2, clock=Clock())
    limiter.acquire()
    limiter.acquire()
    got_third = threading.Event()

    def third():
        limiter.acquire()
        got_third.set()

    waiter = threading.Thread(target=third)
    waiter.start()
    assert not got_third.wait(0.2)
    limiter.release()
    assert got_third.wait(10)
    waiter.join()
    assert limiter.in_use == 2


def test_invalid_bounds_are_refused():
    with pytest.raises(ValueError):
        AimdLimiter(4, floor=5)
    with pytest.raises(ValueError):
        AimdLimiter(4, decrease=1.0)


def test_governor_counts_retries_and_throttles_and_backs_off(emulator):
    """Every request of an attached client holds a slot; a SlowDown lowers the limit and botocore's retry of it
    counts as a retried request; a detached client is left alone."""
    emulator.create_bucket("bkt")
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket="bkt", Key="a", Body=b"a")
    governor = RequestGovernor(AimdLimiter(16, clock=Clock()))
    governor.attach(client)
    emulator.configure(fault_slowdown_rate=0.5, seed=3)
    for _ in range(20):
        client.head_object(Bucket="bkt", Key="a")
    emulator.configure(fault_slowdown_rate=0.0)
    counts = governor.counts()
    injected = emulator.stats()["faults"]["503"]
    assert injected > 0
    assert counts["throttled_requests"] == injected == counts["retried_requests"]
    assert counts["requests"] == 20 + injected
    assert governor.limiter.limit < 16 and governor.limiter.in_use == 0
    governor.detach(client)
    client.head_object(Bucket="bkt", Key="a")
    assert governor.counts()["requests"] == 20 + injected
