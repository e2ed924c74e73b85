"""The emulator's configuration and its timing, throttling and fault model.

Timing: every request waits ``latency_s`` (``asyncio.sleep``, never blocking the loop); a copy or part copy of n
bytes waits ``latency_s + n / copy_bandwidth`` in total, per stream (no aggregate cap). Throttling: a token bucket
per (bucket, key prefix up to the first ``/``) and request class answers 503 SlowDown when empty. Faults: seeded
probabilities of a 503 SlowDown (whatever the rate ceilings say), a 500 InternalError, a connection reset (RST) after the request was read, a hang until the
client gives up, and, for copies, S3's "200 OK with an error body".
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass, field

#: The account that owns buckets created with an access key that maps to no account (moto uses it too).
DEFAULT_ACCOUNT = "123456789012"
_KEY_WITH_ACCOUNT = re.compile(r"^(?:AKIA|ASIA)(\d{12})")

#: Request classes for the rate ceilings (S3: 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD per prefix).
READ, WRITE = "read", "write"

#: What an injected fault does to one request.
FAULT_SLOWDOWN, FAULT_500, FAULT_RESET, FAULT_HANG, FAULT_200_ERROR = "503", "500", "reset", "hang", "200-error"


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; change fields at run time with ``S3Emulator.configure``."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Objects up to this size keep their bytes; larger ones keep metadata only (GetObject streams pseudo-random
    #: bytes derived from the object's content identity).
    small_object_max: int = 1024 * 1024
    latency_s: float = 0.0
    #: Bytes per second of one copy stream (CopyObject, UploadPartCopy); 0 means instant.
    copy_bandwidth: float = 90e6
    #: Requests per second per (bucket, first key segment) for writes and reads; 0 disables the ceiling.
    write_rate: float = 3500.0
    read_rate: float = 5500.0
    #: Seconds of requests a token bucket can hold (its burst).
    rate_burst_s: float = 1.0
    #: Probability of a 503 SlowDown regardless of the rate ceilings (S3 throttling at random, as while it scales).
    fault_slowdown_rate: float = 0.0
    fault_500_rate: float = 0.0
    fault_reset_rate: float = 0.0
    fault_hang_rate: float = 0.0
    #: Probability that a CopyObject/UploadPartCopy/CompleteMultipartUpload answers 200 with an error body.
    fault_200_error_rate: float = 0.0
    #: Operations faults apply to (e.g. ``{"UploadPartCopy"}``); empty means all operations.
    fault_operations: frozenset[str] = frozenset()
    #: A hung request closes its connection after this many seconds if the client has not gone away before.
    hang_max_s: float = 300.0
    #: A copy that takes longer than this sends its 200 status at once and then a space every this many seconds
    #: until the result, like S3 does; 0 disables it.
    copy_keepalive_s: float = 5.0
    seed: int = 0
    #: Access key -> 12-digit account id; keys like ``AKIA<12 digits>...`` map to those digits without an entry.
    accounts: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    #: PEM files of a certificate and its key: serve HTTPS with them (``tls.self_signed``), else plain HTTP.
    tls_cert: str | None = None
    tls_key: str | None = None

    def account_for(self, access_key: str | None) -> str:
        if access_key:
            if access_key in self.accounts:
                return self.accounts[access_key]
            match = _KEY_WITH_ACCOUNT.match(access_key)
            if match:
                return match.group(1)
        return DEFAULT_ACCOUNT

    def copy_delay(self, nbytes: int) -> float:
        """Seconds a copy of ``nbytes`` takes beyond the request latency."""
        return nbytes / self.copy_bandwidth if self.copy_bandwidth > 0 else 0.0

    def replace(self, **changes) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)


class RateLimiter:
    """Token buckets per (bucket, prefix, class); ``allow`` takes a token or reports that the caller must 503."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], list[float]] = {}

    def allow(self, config: EmulatorConfig, bucket: str, key: str, klass: str, now: float) -> bool:
        rate = config.read_rate if klass == READ else config.write_rate
        if rate <= 0:
            return True
        capacity = max(1.0, rate * config.rate_burst_s)
        slot = (bucket, key.partition("/")[0], klass)
        state = self._buckets.get(slot)
        if state is None:
            state = self._buckets[slot] = [capacity, now]
        tokens = min(capacity, state[0] + (now - state[1]) * rate)
        state[1] = now
        if tokens < 1.0:
            state[0] = tokens
            return False
        state[0] = tokens - 1.0
        return True


class FaultInjector:
    """Draws, from one seeded generator, which fault (if any) hits each request, in arrival order."""

    _COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy", "CompleteMultipartUpload"})

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def draw(self, config: EmulatorConfig, operation: str) -> str | None:
        if not (config.fault_slowdown_rate or config.fault_500_rate or config.fault_reset_rate or config.fault_hang_rate
                or config.fault_200_error_rate):
            return None
        if config.fault_operations and operation not in config.fault_operations:
            return None
        rates = [(FAULT_SLOWDOWN, config.fault_slowdown_rate), (FAULT_500, config.fault_500_rate), (FAULT_RESET, config.fault_reset_rate), (FAULT_HANG, config.fault_hang_rate)]
        if operation in self._COPY_OPERATIONS:
            rates.append((FAULT_200_ERROR, config.fault_200_error_rate))
        if not any(rate > 0 for _, rate in rates):
            return None
        roll = self._random.random()
        for fault, rate in rates:
            if roll < rate:
                return fault
            roll -= rate
        return None
