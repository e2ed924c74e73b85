"""An asyncio S3-compatible HTTP server for benchmarks and reliability tests.

Objects are metadata (size, ETag, checksum, metadata, tags) with real bytes only for small ones, so a 48 TiB
object or a million keys cost nothing. Per-request latency, per-stream copy bandwidth, per-prefix request-rate
ceilings (503 SlowDown) and seeded faults (500, connection reset, hang, 200-with-error) model S3 under load.

Modules: ``http`` (the HTTP/1.1 protocol), ``store`` (metadata store and virtual content), ``handlers`` (the S3
operations), ``model`` (configuration, timing, throttling, faults), ``errors`` (S3 error responses), ``server``
(``S3Emulator``: background thread and emulator-side API), ``selfbench`` (the emulator's own ceiling).
Run it with ``python -m benchmarks.s3emulator --help``; measure it with ``python -m benchmarks.s3emulator.selfbench``.

Choices and limits: signatures are not checked (the access key only names the account: ``AKIA<12 digits>...`` or
``EmulatorConfig.accounts``); any account may use any bucket, but ``ExpectedBucketOwner`` and
``ExpectedSourceBucketOwner`` are enforced. GetObject of a virtual object streams deterministic pseudo-random bytes
and, since those are stand-ins, no checksum headers. No versioning (``versionId=null`` only), ACLs, policies,
SSE-C/KMS, object lock, annotations or presigned-URL expiry; unsupported subresources answer 501 NotImplemented.
Copy bandwidth is per stream, with no aggregate cap. One event loop: the ceiling is one core's worth of requests.
"""

from .model import DEFAULT_ACCOUNT, EmulatorConfig
from .server import S3Emulator

__all__ = ["DEFAULT_ACCOUNT", "EmulatorConfig", "S3Emulator"]
