"""Back off when S3 throttles: an AIMD limit on the requests a worker has in flight, and counts of retried and
throttled requests for the report.

botocore's adaptive retry mode slows the *rate* of one client after a throttle, but cuts it hard at every
SlowDown and climbs back slowly (see ``s3client``), and it gives no counts. ``RequestGovernor`` limits the
requests the engine's object and part threads keep in flight instead, and counts them, through botocore's
documented event hooks, so it governs every request the engine sends through a client
(object copies, parts, HEADs, listings) without the copier knowing: a 503 SlowDown halves the limit (at most
once per ``cooldown`` seconds, as one burst of throttles is one signal), and each window of ``limit`` answers
without throttling raises it by one, back up to the configured concurrency. A fleet of workers sharing one
prefix thus settles below S3's per-prefix ceiling instead of hammering it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Error codes S3 answers when it throttles.
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                              "TooManyRequests", "503"})


class AimdLimiter:
    """A counting semaphore whose limit moves between ``floor`` and ``ceiling``: ``throttled`` multiplies it by
    ``decrease`` (at most once per ``cooldown`` seconds), ``succeeded`` adds one per ``limit`` successes."""

    def __init__(self, ceiling: int, floor: int = 1, decrease: float = 0.5, cooldown: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, not floor={floor}, ceiling={ceiling}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, not {decrease}")
        self.ceiling, self.floor, self.decrease, self.cooldown = ceiling, floor, decrease, cooldown
        self._clock = clock
        self._limit = ceiling
        self._in_use = 0
        self._credit = 0
        self._last_decrease = float("-inf")
        #: How often the limit was lowered, and the lowest it went.
        self.decreases = 0
        self.lowest = ceiling
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        """Wait until fewer than ``limit`` slots are taken, then take one."""
        with self._changed:
            self._changed.wait_for(lambda: self._in_use < self._limit)
            self._in_use += 1

    def release(self) -> None:
        with self._changed:
            self._in_use -= 1
            self._changed.notify()

    def throttled(self) -> None:
        """S3 asked to slow down: lower the limit, unless it was lowered less than ``cooldown`` seconds ago."""
        with self._changed:
            now = self._clock()
            if now - self._last_decrease < self.cooldown:
                return
            self._last_decrease = now
            lowered = max(self.floor, int(self._limit * self.decrease))
            if lowered < self._limit:
                self._limit = lowered
                self.decreases += 1
                self.lowest = min(self.lowest, lowered)
            self._credit = 0

    def succeeded(self) -> None:
        """An answer without throttling: after ``limit`` of them, raise the limit by one."""
        with self._changed:
            if self._limit >= self.ceiling:
                return
            self._credit += 1
            if self._credit >= self._limit:
                self._credit = 0
                self._limit += 1
                self._changed.notify_all()


class RequestGovernor:
    """Holds every request of the clients it is attached to within ``limiter`` and counts requests, retried
    requests (botocore's second and later attempts) and throttled answers. Attach with ``attach(client)`` and
    detach before the limiter goes away; thread-safe."""

    def __init__(self, limiter: AimdLimiter):
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
                    "throttled_requests": self.throttled, "concurrency_decreases": self.limiter.decreases,
                    "lowest_concurrency": self.limiter.lowest}

    # botocore emits ``before-send`` just before each HTTP attempt and ``response-received`` after it, whatever
    # its outcome (an answer or an exception such as a reset connection), so every slot taken is given back.
    def _before_send(self, request, **kwargs) -> None:
        self.limiter.acquire()

    def _response_received(self, parsed_response=None, context=None, exception=None, **kwargs) -> None:
        self.limiter.release()
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
