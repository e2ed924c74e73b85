"""Back off when S3 throttles: an AIMD limit on the rate a worker sends requests at, and counts of retried and
throttled requests for the report.

S3 throttles a prefix by its request *rate* (3,500 writes and 5,500 reads per second), so the governor paces
requests: each waits locally for its turn instead of being sent to be refused. botocore's adaptive retry mode
paces too, but cuts the rate hard at every SlowDown and climbs back slowly (see ``s3client``), and gives no
counts. ``RequestGovernor`` paces every request the engine sends through a client (object copies, parts, HEADs,
listings; through botocore's documented event hooks, which ``crt_copy`` emits as well) without the copier
knowing. There is no limit until S3 throttles; then SlowDowns set the limit a little below the rate answers
succeeded at just before (at most once per ``cooldown``, as one burst of throttles is one signal), and successes
raise it again, faster the longer S3 does not throttle. A worker, or a fleet of workers sharing one prefix,
thus sends at about the prefix's ceiling with few SlowDowns, and the throttled requests it retries wait for
their turn rather than sleeping through a backoff (``ObjectCopier``'s ``paced``).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

#: Error codes S3 answers when it throttles.
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                              "TooManyRequests", "503"})


class Turns:
    """Turns to send requests at ``rate`` per second: ``1 / rate`` apart, and one that took none for a while
    may take ``burst`` seconds' worth at once: a token bucket of ``rate × burst`` requests, kept as the time of
    the last turn (the generic cell rate algorithm; small enough not to need a library). Not thread-safe: its
    users hold their own lock or use it from one thread."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._last = -math.inf

    def wait(self, now: float, weight: float = 1.0) -> float:
        """Seconds from ``now`` until a turn (of ``weight`` turns) is free (0: one is)."""
        return max(0.0, self._last + weight / self.rate - now)

    def take(self, now: float, weight: float = 1.0) -> None:
        """Take the turn (of ``weight`` turns) that is free at ``now``."""
        self._last = max(self._last + weight / self.rate, now - self.burst)

    def idle(self, now: float) -> bool:
        """Whether these turns are as new ones at ``now``: none taken for ``burst`` seconds."""
        return self._last <= now - self.burst


class PrefixTurns:
    """Turns for the part copies a worker sends, at ``rate`` per second (``burst`` seconds' worth at once) for each
    destination prefix (the bucket and the key's parent "directory"), shared by every object copied there. One
    object's parts all go to one partition of S3 (one key), and the objects of one folder most likely share it,
    which takes about 3,500 writes a second: each object sending at that pace drew SlowDowns for them all, which
    the governor then took for the whole worker's limit (the bench's media mix, 3 masters in one folder: 2,260-3,424
    SlowDowns in 3 runs; 269-734 with one pace for the folder). Thread-safe: the object threads of a shard run
    share it."""

    #: Prefixes kept before those whose turns are idle (as new ones) are forgotten.
    _KEEP = 1024

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._turns: dict[tuple[str, str], Turns] = {}
        self._lock = threading.Lock()

    def for_object(self, bucket: str, key: str, share: float = 1.0) -> ObjectTurns:
        """The turns of one object's part copies to ``bucket``/``key`` when ``share`` of its parts are copied here
        (a split run's): each part weighs ``1 / share`` turns, so that a run alone goes at its share of the pace."""
        prefix = (bucket, key.rpartition("/")[0])
        with self._lock:
            turns = self._turns.get(prefix)
            if turns is None:
                if len(self._turns) >= self._KEEP:
                    now = self._clock()
                    self._turns = {kept: old for kept, old in self._turns.items() if not old.idle(now)}
                turns = self._turns[prefix] = Turns(self.rate, self.burst)
        return ObjectTurns(turns, self._lock, 1.0 / share)


class ObjectTurns:
    """One object's turns in its prefix's ``Turns`` (``PrefixTurns.for_object``): ``wait`` and ``take`` as
    ``Turns`` has them, each turn weighing ``weight``."""

    __slots__ = ("_turns", "_lock", "_weight")

    def __init__(self, turns: Turns, lock: threading.Lock, weight: float):
        self._turns, self._lock, self._weight = turns, lock, weight

    def wait(self, now: float) -> float:
        with self._lock:
            return self._turns.wait(now, self._weight)

    def take(self, now: float) -> None:
        with self._lock:
            self._turns.take(now, self._weight)


class AimdRate:
    """A limit on the rate of requests (per second), none until S3 throttles; ``acquire`` waits for a request's
    turn, paced at the limit.

    ``throttled`` lowers the limit when more than ``tolerance`` of the answers since the later of ``window`` seconds ago
    and ``settle`` seconds after the last decrease, and at least ``_MIN_THROTTLES``, were throttles, over at least
    ``_MIN_SPAN`` seconds of answers: to ``decrease`` times the rate that got through then (successes, or the turns
    taken in the last ``_SENT_SPAN`` seconds, since the last decrease, less the throttles if more: a part copy succeeds
    seconds after S3 took it; when neither, half the rate of throttles: at most that much got through), if that is
    lower, never under ``floor``. The throttles of the first ``settle`` seconds after a decrease answer requests sent
    before it, at the higher limit: one burst is one signal. Requests sent after it are judged as soon as their answers
    come: a first decrease, whose window also holds the successes S3's burst let through before it throttled, is too
    high, and a worker went on sending at it for a whole cooldown (0.5 s) when the cooldown also kept decreases apart
    (one worker on one prefix, ``benchmarks.bench --only fleet-one``: 918-1,095 SlowDowns in the first second, 592-715
    since, 331-441 with ``settle`` and ``_MIN_SPAN`` at 0.05 s rather than 0.1). At S3's ceiling the successes stay at
    the ceiling while throttles go on, so a second decrease does not compound the first; nor does one that counts the
    late throttles of requests sent before a decrease (answers slower than ``settle``). The tolerance keeps a few
    throttles at random (as S3 answers while it scales, or ``tests/engine/test_faults.py`` injects) from lowering the
    limit again and again, since fewer requests do not make them fewer; at S3's ceiling the throttles soon pass it.

    Each success raises the limit by ``growth`` times the limit set at the last decrease, plus ``_STEP``, per second
    of successes at the limit (so by less when fewer requests are sent), a growth that doubles for every
    ``cooldown`` without a throttle, and after ``_LIFT_AFTER`` of them the limit is lifted, in steps: doubled every
    ``settle`` seconds while the worker takes at least half its turns, until S3 throttles (which stops the steps
    where they are) or the limit no longer holds the worker back (then it is gone). So it settles just under S3's
    ceiling and is gone soon after S3 stops throttling (e.g. when the other workers on the prefix are done or the
    worker moved on to another prefix). Lifted at once, a worker at a prefix's ceiling sent all its rows in flight
    into it: one worker on one prefix drew a burst of 180-200 SlowDowns every 3 s."""

    #: Cooldowns without a throttle after which the limit is lifted: a worker whose share of a prefix was small
    #: (the others sent more) would otherwise climb back for seconds once the others are done. Two rather than
    #: four: 8 workers sharing one prefix's ceiling (``benchmarks.bench --only fleet-one``) then ended their copies
    #: 0.45 s sooner on average (8 runs each), for 6% more SlowDowns.
    _LIFT_AFTER = 2
    #: Requests per second a success adds per second of successes at the limit besides the growth: the same for
    #: every worker of a fleet, while a decrease cuts each in proportion, so their shares of a prefix even out
    #: (AIMD's fairness) and none is left alone with a small share and much left to copy.
    _STEP = 10.0
    #: Seconds of answers a decrease is decided on, at least: the answers of a moment say little of a rate. With it
    #: and ``settle`` at 0.05 s rather than 0.1 (2.5 times the bench's 20 ms latency), a worker on a prefix's
    #: ceiling corrects a limit that is too high twice as soon: ``benchmarks.fleet_throttles``, 3 interleaved runs
    #: each, drew 823-920 / 1,698-2,057 / 2,606-2,764 SlowDowns at 1 / 4 / 8 workers on one prefix, against
    #: 983-1,168 / 2,059-2,261 / 2,881-3,081, with the same pace.
    _MIN_SPAN = 0.05
    #: Seconds of turns taken that count for the rate that got through (``throttled``): longer than the window.
    _SENT_SPAN = 2.0
    #: Throttles in the window below which the limit is not lowered: a few requests' answers say nothing of a rate.
    _MIN_THROTTLES = 5
    #: Seconds of turns a worker that sent nothing for a while may catch up on (``reserve``).
    _CATCH_UP = 0.02
    #: The longest a waiter sleeps before it looks at the limit again (``acquire``).
    _LOOK_AGAIN = 0.05

    def __init__(self, floor: float = 1.0, decrease: float = 0.85, growth: float = 0.2, cooldown: float = 0.5,
                 window: float = 0.5, tolerance: float = 0.1, settle: float = 0.05,
                 clock: Callable[[], float] = time.monotonic):
        if min(floor, growth, cooldown, window, settle) <= 0 or not 0 <= tolerance < 1:
            raise ValueError("floor, growth, cooldown, window and settle must be positive, tolerance between 0 and 1")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, not {decrease}")
        self.floor, self.decrease, self.growth, self.cooldown, self.window = floor, decrease, growth, cooldown, window
        self.tolerance, self.settle = tolerance, settle
        self._clock = clock
        self._turns = Turns(math.inf, self._CATCH_UP)
        self._rate_at_decrease = math.inf
        self._last_decrease = self._last_throttle = -math.inf
        #: When the turns of the last ``_SENT_SPAN`` seconds were taken, when the successes of the last ``window``
        #: seconds came, and when the throttles of the longer of the two came (the window's are its last ones).
        self._sent: deque[float] = deque()
        self._successes: deque[float] = deque()
        self._throttles: deque[float] = deque()
        self._first_answer: float | None = None
        #: While the limit is being lifted (``succeeded``), when it was last doubled; else None.
        self._lifting: float | None = None
        #: How often the limit was lowered, and the lowest it went (None: never limited).
        self.decreases = 0
        self.lowest: float | None = None
        self._lock = threading.Lock()
        self._turnstile = threading.Lock()

    @property
    def rate(self) -> float:
        """The limit in requests per second (``math.inf``: none)."""
        return self._turns.rate

    def reserve(self) -> float:
        """Take a turn to send if it is due (returns 0), else the seconds until it is, at the present limit;
        a worker that sent nothing for a while may catch up on ``_CATCH_UP`` seconds of turns at most, so it
        does not send a burst."""
        with self._lock:
            now = self._clock()
            if self._lifting is not None and now - self._lifting >= self.settle:
                self._lift(now)
            if wait := self._turns.wait(now):
                return wait
            self._turns.take(now)
            self._sent.append(now)
            return 0.0

    def _lift(self, now: float) -> None:
        """A step of lifting the limit: doubled again if the worker took at least half its turns of the last
        ``settle`` seconds, else gone (it no longer holds the worker back)."""
        if self._count_since(self._sent, now - self.settle) < self._turns.rate * self.settle / 2:
            self._turns.rate, self._lifting = math.inf, None
        else:
            self._turns.rate *= 2
            self._lifting = now

    def acquire(self) -> None:
        """Wait for a turn. One waiter at a time watches the clock (the others queue on ``_turnstile``), and
        it looks again at least every ``_LOOK_AGAIN`` seconds, so a limit that rises cuts its wait short."""
        with self._turnstile:
            while wait := self.reserve():
                time.sleep(min(wait, self._LOOK_AGAIN))

    def throttled(self) -> None:
        """S3 asked to slow down: lower the limit, unless the throttles since the limit was last lowered (and
        ``settle`` seconds) are too few or too recent to say S3 is at its ceiling (see the class)."""
        with self._lock:
            now = self._clock()
            self._throttles.append(now)
            self._last_throttle, self._lifting = now, None
            self._forget(now)
            counted_since = max(now - self.window, self._last_decrease + self.settle, self._first_answer)
            span = now - counted_since
            throttles = self._count_since(self._throttles, counted_since)
            successes = self._count_since(self._successes, counted_since)
            if (span < self._MIN_SPAN or throttles < self._MIN_THROTTLES
                    or throttles <= self.tolerance * (throttles + successes)):
                return  # the same burst of throttles, or too few to say S3 is at its ceiling
            # Requests sent and not refused got through too: a part copy's success comes seconds later, and a
            # throttle may come later than ``window`` after its request was sent (a busy server). Only those since
            # the last decrease: the turns taken before it, at the higher limit, kept the next limit from coming
            # down for up to ``_SENT_SPAN`` while S3 went on refusing most requests, and a small object's copy then
            # ran out of throttled attempts (workers sharing a prefix).
            since = max(now - self._SENT_SPAN, self._last_decrease)
            sent, refused = self._count_since(self._sent, since), self._count_since(self._throttles, since)
            sent_span = now - self._sent[-sent] if sent else 0.0
            sent_through = (sent - refused) / sent_span if sent_span else 0.0
            got_through = max(successes / span, sent_through)
            got_through = got_through or throttles / 2 / span
            lowered = max(self.floor, min(self._turns.rate, self.decrease * got_through))
            self._turns.rate = self._rate_at_decrease = lowered
            self._last_decrease = now
            self.decreases += 1
            self.lowest = lowered if self.lowest is None else min(self.lowest, lowered)

    def succeeded(self) -> None:
        """An answer without throttling: counted for the success rate, and the limit (if any) grows."""
        with self._lock:
            now = self._clock()
            self._successes.append(now)
            self._forget(now)
            if self._turns.rate == math.inf or self._lifting is not None:
                return
            doublings = int((now - self._last_throttle) / self.cooldown)
            if doublings >= self._LIFT_AFTER:
                self._turns.rate *= 2
                self._lifting = now
            else:
                turns = self._turns
                turns.rate += (self.growth * self._rate_at_decrease * 2 ** doublings + self._STEP) / turns.rate

    def _forget(self, now: float) -> None:
        """Drop the turns and answers older than they are kept for (and note when the first answer came)."""
        if self._first_answer is None:
            self._first_answer = now
        for answers, span in ((self._sent, self._SENT_SPAN), (self._successes, self.window),
                              (self._throttles, max(self.window, self._SENT_SPAN))):
            while answers and answers[0] <= now - span:
                answers.popleft()

    @staticmethod
    def _count_since(times: deque[float], since: float) -> int:
        """How many of ``times`` (in order) are later than ``since``."""
        return len(times) - bisect.bisect_right(times, since)


class RequestGovernor:
    """Paces every request of the clients it is attached to at ``limiter``'s rate and counts requests, retried
    requests (botocore's second and later attempts) and throttled answers. Attach with ``attach(client)`` and
    detach before the limiter goes away; thread-safe."""

    def __init__(self, limiter: AimdRate):
        self.limiter = limiter
        self.requests = 0
        self.retried = 0
        self.throttled = 0
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("before-send.s3", self._before_send)
        client.meta.events.register("response-received.s3", self._response_received)

    def detach(self, client) -> None:
        client.meta.events.unregister("before-send.s3", self._before_send)
        client.meta.events.unregister("response-received.s3", self._response_received)

    def counts(self) -> dict:
        """The counts for a report summary."""
        with self._lock:
            return {"requests": self.requests, "retried_requests": self.retried,
                    "throttled_requests": self.throttled, "rate_decreases": self.limiter.decreases,
                    "lowest_request_rate": None if self.limiter.lowest is None else round(self.limiter.lowest, 1)}

    # botocore emits ``before-send`` just before each HTTP attempt (botocore's own retries included) and
    # ``response-received`` after it, whatever its outcome (an answer or an exception such as a reset connection).
    def _before_send(self, request, **kwargs) -> None:
        self.limiter.acquire()

    def _response_received(self, parsed_response=None, context=None, exception=None, **kwargs) -> None:
        code = ((parsed_response or {}).get("Error") or {}).get("Code")
        throttled = code in THROTTLING_CODES
        with self._lock:
            self.requests += 1
            self.retried += (context or {}).get("retries", {}).get("attempt", 1) > 1
            self.throttled += throttled
        if throttled:
            self.limiter.throttled()
        elif exception is None:
            self.limiter.succeeded()
