"""The AIMD limit on the request rate, and the request counts that go into the report."""

from __future__ import annotations

import math
import os
import sys

import pytest

from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.throttle import AimdRate, PrefixTurns, RequestGovernor

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402


@pytest.fixture
def emulator():
    with S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0) as instance:
        yield instance


class Clock:
    """A fake clock: ``now`` moves only when a test moves it, or by ``step`` at every look."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _burst(limiter: AimdRate) -> None:
    """A burst of throttles at one instant: enough to count (``_MIN_THROTTLES``)."""
    for _ in range(AimdRate._MIN_THROTTLES):
        limiter.throttled()


def _first_throttles(limiter: AimdRate, clock: Clock) -> None:
    """Throttles as the first answers: one, then ``_MIN_SPAN`` seconds later (and a rounding's worth) enough to
    count."""
    limiter.throttled()
    clock.now += AimdRate._MIN_SPAN * 1.0001
    _burst(limiter)


def _succeed(limiter: AimdRate, clock: Clock, count: int, seconds: float) -> None:
    """``count`` successes spread evenly over the next ``seconds``."""
    for _ in range(count):
        clock.now += seconds / count
        limiter.succeeded()


def test_no_limit_until_a_throttle_then_a_little_under_the_rate_that_got_through():
    clock = Clock()
    limiter = AimdRate(decrease=0.8, window=1.0, tolerance=0, clock=clock)
    _succeed(limiter, clock, 300, 3.0)
    assert limiter.rate == math.inf and limiter.reserve() == 0 and limiter.reserve() == 0
    for _ in range(AimdRate._MIN_THROTTLES - 1):
        limiter.throttled()
    assert limiter.rate == math.inf  # too few to say anything of a rate
    limiter.throttled()
    assert limiter.rate == pytest.approx(80, rel=0.02)  # 100 successes in the last second (the window)
    assert (limiter.decreases, limiter.lowest) == (1, limiter.rate)


def test_one_burst_of_throttles_lowers_the_limit_once_then_below_what_still_gets_through():
    clock = Clock()
    limiter = AimdRate(decrease=0.5, cooldown=0.5, window=1.0, tolerance=0, clock=clock)
    _succeed(limiter, clock, 100, 1.0)
    _burst(limiter)
    clock.now += limiter.settle / 2
    _burst(limiter)  # the same burst
    assert limiter.rate == pytest.approx(50, rel=0.02) and limiter.decreases == 1
    _succeed(limiter, clock, 10, 1.0)  # only 10 got through in the last second
    rate = limiter.rate
    _burst(limiter)
    # the 10 successes since the decrease and ``settle`` (1 s + settle / 2 - settle), times 0.5
    got_through = 10 / (1.0 - limiter.settle / 2)
    assert limiter.rate == pytest.approx(0.5 * got_through, rel=0.01) and rate > 50 and limiter.decreases == 2


def test_requests_sent_and_not_refused_got_through_though_none_has_succeeded_yet():
    """Part copies answer seconds after S3 takes them: the rate that got through is the turns taken less the
    throttles, not the successes (none yet), or the first throttles would cut the limit to a few per second."""
    clock = Clock()
    limiter = AimdRate(decrease=0.5, window=1.0, tolerance=0, clock=clock)
    clock.now = 1.0
    limiter.succeeded()  # an earlier request (the source's HEAD)
    for _ in range(800):  # 400 turns per second for 2 s, then throttles come back a second later
        clock.now += 1 / 400
        assert limiter.reserve() == 0
    early = AimdRate._MIN_THROTTLES - 1  # too few to count, then out of the window, but they did not get through
    for _ in range(early):
        limiter.throttled()
    clock.now += 1.0
    _burst(limiter)
    # the last 2 s (_SENT_SPAN) held 400 turns
    got_through = (400 - early - AimdRate._MIN_THROTTLES) / AimdRate._SENT_SPAN
    assert limiter.rate == pytest.approx(0.5 * got_through, rel=0.01) and limiter.decreases == 1


def test_after_a_decrease_only_the_turns_taken_since_count_as_sent():
    """The turns taken at the higher limit before a decrease do not hold the next limit up while S3 goes on refusing
    every request (workers sharing a prefix: a small object's copy ran out of throttled attempts meanwhile)."""
    clock = Clock()
    limiter = AimdRate(decrease=0.5, cooldown=0.5, window=1.0, tolerance=0, clock=clock)
    clock.now = 1.0
    for _ in range(800):  # 400 turns per second for 2 s, none answered yet
        clock.now += 1 / 400
        assert limiter.reserve() == 0
    _first_throttles(limiter, clock)
    lowered = limiter.rate
    # the last 2 s (_SENT_SPAN) held the turns of all but the first _MIN_SPAN
    turns = 800 - 400 * AimdRate._MIN_SPAN
    assert lowered == pytest.approx(0.5 * (turns - 1 - AimdRate._MIN_THROTTLES) / AimdRate._SENT_SPAN, rel=0.01)
    while clock.now < 4.0:  # a second at that limit, every request refused
        clock.now += 0.001
        if limiter.reserve() == 0:
            limiter.throttled()
    # nothing got through since the decrease (the 2 s of turns would have said 397 per second)
    assert limiter.rate < lowered / 2 and limiter.decreases > 1


def test_throttled_before_anything_got_through_counts_half_the_throttles_and_stops_at_the_floor():
    clock = Clock()
    limiter = AimdRate(decrease=0.5, floor=0.1, cooldown=0.5, window=1.0, clock=clock)
    limiter.throttled()
    _burst(limiter)
    assert limiter.rate == math.inf  # throttles of one moment: too soon to say anything of a rate
    _first_throttles(limiter, clock)
    # 5 throttles in the _MIN_SPAN after the first answers: at most half that rate got through; times 0.5
    assert limiter.rate == pytest.approx(0.5 * AimdRate._MIN_THROTTLES / 2 / AimdRate._MIN_SPAN, rel=0.001)
    for _ in range(3):
        clock.now += 2.0
        _burst(limiter)
    # 5 throttles in the window (1 s): 2.5 per second at most, times 0.5; the same again: not lower
    assert (limiter.rate, limiter.decreases) == (1.25, 4)
    clock = Clock()
    floored = AimdRate(decrease=0.5, floor=30.0, clock=clock)
    _first_throttles(floored, clock)  # 0.5 × 5 / 2 / _MIN_SPAN is less
    assert (floored.rate, floored.lowest) == (30.0, 30.0)


def test_throttles_of_requests_sent_after_a_decrease_count_as_soon_as_they_come():
    """The throttles of the first ``settle`` seconds after a decrease answer requests sent before it; those after
    it are judged on their own, without waiting for the cooldown: a first decrease, whose window held the successes
    of S3's burst, was too high."""
    clock = Clock()
    limiter = AimdRate(decrease=0.5, cooldown=0.5, window=1.0, tolerance=0, settle=0.1, clock=clock)
    _succeed(limiter, clock, 1000, 1.0)  # S3's burst let a thousand through
    _burst(limiter)
    assert limiter.rate == pytest.approx(500, rel=0.02)
    for _ in range(10):  # the requests sent before the decrease come back refused
        clock.now += 0.005
        limiter.throttled()
    assert limiter.decreases == 1
    for _ in range(10):  # sent after it: 1 in 3 gets through, 50 per second
        _succeed(limiter, clock, 1, 0.01)
        clock.now += 0.01
        limiter.throttled()
        limiter.throttled()
    assert clock.now < 1.0 + limiter.cooldown and limiter.decreases == 2
    assert 20 < limiter.rate < 30


def test_a_few_throttles_among_many_successes_are_tolerated():
    clock = Clock()
    limiter = AimdRate(decrease=0.5, window=1.0, tolerance=0.1, clock=clock)
    for _ in range(10):
        _succeed(limiter, clock, 19, 0.095)
        limiter.throttled()  # one in twenty: 5%
    assert (limiter.rate, limiter.decreases) == (math.inf, 0)
    for _ in range(20):
        clock.now += 0.005
        limiter.throttled()  # now 30 of the last second's 200 answers
    assert 80 < limiter.rate < 100 and limiter.decreases == 1  # half the 170-190 successes of the last second


def test_turns_are_paced_at_the_limit_and_an_idle_worker_does_not_save_them_up():
    clock = Clock()
    limiter = AimdRate(decrease=0.5, window=1.0, tolerance=0, clock=clock)
    _succeed(limiter, clock, 20, 1.0)
    _burst(limiter)  # about 10 per second
    assert limiter.reserve() == 0
    wait = limiter.reserve()  # not taken: the caller waits and asks again
    assert 0.07 < wait <= 0.1  # 1 / rate after the first turn, which may have been up to _CATCH_UP (0.02 s) late
    clock.now += wait
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(1 / limiter.rate)
    clock.now += 60.0
    sent = 0
    while limiter.reserve() == 0:
        sent += 1
    assert sent <= 2  # after a minute idle, a turn now and at most what _CATCH_UP (0.02 s) allows


def test_successes_raise_the_limit_faster_the_longer_there_is_no_throttle_then_lift_it():
    clock = Clock()
    limiter = AimdRate(decrease=0.5, growth=0.5, cooldown=0.5, window=1.0, tolerance=0, clock=clock)
    _succeed(limiter, clock, 200, 1.0)
    _burst(limiter)
    assert limiter.rate == pytest.approx(100, rel=0.02)
    decreased = limiter.rate
    step = AimdRate._STEP
    _succeed(limiter, clock, 25, 0.25)  # at about the limit, within the first cooldown: +(50 + step) per second
    first = limiter.rate - decreased
    assert first == pytest.approx((50 + step) / 4, rel=0.1)
    clock.now += 0.25  # one cooldown after the throttles: the growth has doubled
    rate = limiter.rate
    limiter.succeeded()
    assert limiter.rate - rate == pytest.approx((2 * 50 + step) / rate, rel=0.01)
    clock.now += 0.5  # two: the lift starts, the limit doubled
    rate = limiter.rate
    limiter.succeeded()
    assert limiter.rate == 2 * rate


def test_a_lift_doubles_the_limit_while_its_turns_are_taken_until_a_throttle_or_it_holds_nothing_back():
    """A lift sends at twice the limit, then four times... rather than every row in flight at once into a prefix
    still at its ceiling; a throttle stops it there, and a limit the worker no longer reaches is gone."""
    clock = Clock()
    limiter = AimdRate(decrease=0.5, growth=0.5, cooldown=0.5, window=1.0, tolerance=0, settle=0.125, clock=clock)
    _succeed(limiter, clock, 128, 1.0)
    _burst(limiter)
    decreased = limiter.rate
    assert decreased == pytest.approx(64, rel=0.02)
    clock.now = 2.0  # two cooldowns without a throttle
    limiter.succeeded()
    for doubled in range(1, 4):  # a worker that takes every turn: doubled every settle
        end = clock.now + limiter.settle
        while clock.now < end:
            limiter.reserve()
            assert limiter.rate == decreased * 2 ** doubled
            clock.now += 1 / 1024
    _burst(limiter)  # S3 throttles again: the lift stops where it is, and the limit comes down
    assert limiter.rate <= decreased * 2 ** 4 and limiter.decreases == 2
    clock.now += 10.0
    lowered = limiter.rate
    limiter.reserve()
    assert limiter.rate == lowered
    limiter.succeeded()  # long without a throttle: the lift starts again
    assert limiter.rate == 2 * lowered
    clock.now += limiter.settle  # no turn taken meanwhile: it held nothing back
    assert limiter.reserve() == 0 and limiter.rate == math.inf


def _turns_taken(turns, now: float, most: int = 1000) -> int:
    """How many turns ``turns`` gives at ``now``, taking each."""
    taken = 0
    while taken < most and not turns.wait(now):
        turns.take(now)
        taken += 1
    return taken


def test_objects_of_one_folder_share_its_part_pace_and_other_folders_have_their_own():
    paces = PrefixTurns(rate=64.0, burst=0.5)  # (binary fractions: no rounding at the turns' edges)
    first, second = paces.for_object("dst", "masters/a.mxf"), paces.for_object("dst", "masters/b.mxf")
    assert _turns_taken(first, 10.0) == 1 + 32  # a turn now and half a second's worth
    assert _turns_taken(second, 10.0) == 0  # the folder's burst is spent
    assert second.wait(10.0) == 1 / 64
    assert _turns_taken(second, 10.125) == 8 and _turns_taken(first, 10.125) == 0  # 64 a second between them
    for other in (paces.for_object("dst", "proxies/a.mp4"), paces.for_object("dst", "masters/deeper/c.mxf"),
                  paces.for_object("other-bucket", "masters/a.mxf")):
        assert _turns_taken(other, 10.125) == 1 + 32


def test_once_many_prefixes_are_kept_the_idle_ones_are_forgotten(monkeypatch):
    monkeypatch.setattr(PrefixTurns, "_KEEP", 2)
    clock = Clock()
    paces = PrefixTurns(rate=64.0, burst=0.5, clock=clock)
    paces.for_object("dst", "idle/a.mxf").take(1.0)
    busy = paces.for_object("dst", "busy/a.mxf")
    _turns_taken(busy, 10.0)
    clock.now = 10.0
    paces.for_object("dst", "third/a.mxf")
    assert sorted(prefix for _, prefix in paces._turns) == ["busy", "third"]  # idle/'s were as new ones
    assert paces.for_object("dst", "busy/b.mxf").wait(10.0) == 1 / 64  # busy/ keeps its pace


def test_a_run_of_a_split_objects_parts_goes_at_its_share_of_the_pace():
    paces = PrefixTurns(rate=64.0, burst=0.5)
    quarter = paces.for_object("dst", "big/object", share=0.25)
    assert _turns_taken(quarter, 5.0) == 1 + 8
    assert quarter.wait(5.0) == 4 / 64


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        AimdRate(floor=0)
    with pytest.raises(ValueError):
        AimdRate(decrease=1.0)
    with pytest.raises(ValueError):
        AimdRate(tolerance=1.0)


def test_governor_counts_retries_and_throttles_and_backs_off(emulator):
    """Every request of an attached client waits for its turn; a SlowDown lowers the limit and botocore's retry
    of it counts as a retried request; a detached client is left alone."""
    emulator.create_bucket("bkt")
    client = make_s3_client(endpoint_url=emulator.url)
    client.put_object(Bucket="bkt", Key="a", Body=b"a")
    governor = RequestGovernor(AimdRate(clock=Clock(step=0.005)))  # 5 ms per look: turns come soon
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
    assert governor.limiter.rate < math.inf and governor.limiter.decreases >= 1
    governor.detach(client)
    client.head_object(Bucket="bkt", Key="a")
    assert governor.counts()["requests"] == 20 + injected
