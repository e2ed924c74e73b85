"""An asyncio S3-compatible HTTP server for benchmarks and reliability tests.

Objects are metadata (size, ETag, checksum, metadata, tags) with real bytes only for small ones, so a 48 TiB
object or a million keys cost nothing. Per-request latency, per-stream copy bandwidth, per-prefix request-rate
ceilings (503 SlowDown) and seeded faults (500, connection reset, hang, 200-with-error) model S3 under load.

Modules: ``http`` (the HTTP/1.1 protocol), ``store`` (metadata store and virtual content), ``handlers`` (the S3
operations), ``model`` (configuration, timing, throttling, faults), ``errors`` (S3 error responses), ``server``
(``S3Emulator``: background thread and emulator-side API), ``selfbench`` (the emulator's own ceiling).
Run it with ``python -m benchmarks.s3emulator --help``.
"""

from .model import DEFAULT_ACCOUNT, EmulatorConfig
from .server import S3Emulator

__all__ = ["DEFAULT_ACCOUNT", "EmulatorConfig", "S3Emulator"]
