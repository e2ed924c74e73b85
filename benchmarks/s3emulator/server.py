"""``S3Emulator``: the server in a background thread with its own event loop, plus the emulator-side API that
creates buckets and virtual objects directly (a million keys or a 48 TiB object cost no requests)."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import ssl
import threading
import time
from typing import Iterable

from .handlers import S3App
from .http import HttpServer
from .model import DEFAULT_ACCOUNT, EmulatorConfig
from .store import Content, ObjectRecord, Store

try:  # uvloop (the ``bench`` extra) spends less CPU per connection and per request than asyncio's own loop
    import uvloop
except ImportError:  # pragma: no cover - depends on the environment
    uvloop = None

#: The event loop the emulator runs on, as its command line and ``selfbench`` print it.
EVENT_LOOP = f"uvloop {uvloop.__version__}" if uvloop else "asyncio's own event loop (uvloop is not installed)"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_for_serving() -> None:
    """Tune the allocator and the garbage collector of a process that only runs the emulator (its command line,
    ``EmulatorProcess``).

    glibc's malloc keeps freed memory: a listing page makes and frees a few 300 KB buffers, and glibc gave the top
    of its heap back to the kernel as soon as more than twice the largest recent allocation was free there, so those
    buffers faulted in again on every page (330 page faults per page of 1,000 keys, two thirds of a listing's CPU).
    The collector scans young objects every 100,000 allocations instead of 700: a 1 TiB copy holds about 6,600
    requests in flight, each with a dozen tracked objects (task, coroutine, protocol, dicts), and the collector
    scanned them over and over (15% of the emulator's CPU in a perf profile of ``benchmarks.part_floor``); now most
    are freed before a scan. What is loaded by now is frozen out of the scans."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)


class S3Emulator:
    """An S3-compatible endpoint on 127.0.0.1; ``start()`` returns its URL, ``stop()`` ends it (or use ``with``).

    >>> with S3Emulator(latency_s=0.02, copy_bandwidth=90e6) as emulator:
    ...     emulator.create_bucket("source")
    ...     emulator.put_virtual_object("source", "big.mxf", 5 * 2**40)
    ...     client = boto3.client("s3", endpoint_url=emulator.url, ...)
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides) -> None:
        self.config = (config or EmulatorConfig()).replace(**overrides)
        self.store = Store(self.config.small_object_max)
        self.app = S3App(self.config, self.store)
        self.url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: HttpServer | None = None

    # --------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Start serving in a background thread; returns the endpoint URL (``http://127.0.0.1:PORT``, or https
        with ``tls_cert``)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()
            self._http = HttpServer(self.app, self.config.small_object_max)
            try:
                host, port = loop.run_until_complete(self._http.start(self.config.host, self.config.port,
                                                                      self._tls_context()))
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
                ready.set()
                return
            self.url = f"{'https' if self.config.tls_cert else 'http'}://{host}:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._http.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="s3emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.url

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def stop(self) -> None:
        """Stop serving, closing every connection (hung ones included)."""
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> S3Emulator:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _call(self, function, *args, **kwargs):
        """Run ``function`` on the event loop's thread (the store is not thread-safe) and return its result."""
        if self._thread is None:
            return function(*args, **kwargs)

        async def call():
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    # --------------------------------------------------------------------------------------- emulator-side API
    def configure(self, **changes) -> None:
        """Change configuration fields at run time (latency, bandwidth, rates, fault rates...)."""

        def apply() -> None:
            for name, value in changes.items():
                if not hasattr(self.config, name):
                    raise AttributeError(f"EmulatorConfig has no field {name!r}")
                setattr(self.config, name, value)

        self._call(apply)

    def create_bucket(self, name: str, account: str = DEFAULT_ACCOUNT, region: str | None = None) -> None:
        """Create a bucket owned by ``account``."""
        self._call(self.store.create_bucket, name, account, region or self.config.region)

    def put_virtual_object(self, bucket: str, key: str, size: int, **attributes) -> dict:
        """Create an object of ``size`` bytes that keeps no bytes; returns its ETag and checksum.

        Attributes: ``etag`` (hex MD5 to declare), ``parts`` (N: a multipart-style ``-N`` ETag), ``content_id``
        (objects with the same id and size have the same bytes), ``checksums`` ({algorithm: base64} to declare),
        ``checksum_algorithm`` (default CRC64NVME), ``content_type``, ``metadata``, ``tags``, ``storage_class``,
        ``restored`` (an archived object that may be read and copied), ``owner``, ``last_modified``.
        """
        return self.put_virtual_objects(bucket, [(key, size)], **attributes)[0]

    def put_virtual_objects(self, bucket: str, items: Iterable[tuple[str, int]], **attributes) -> list[dict]:
        """Create many virtual objects (``(key, size)`` pairs, same attributes) in one call on the loop thread."""
        return self._call(self._put_virtual_objects, bucket, list(items), attributes)

    def _put_virtual_objects(self, bucket_name: str, items: list[tuple[str, int]], attributes: dict) -> list[dict]:
        store, bucket = self.store, self.store.bucket(bucket_name)
        options = dict(attributes)
        etag, parts = options.pop("etag", None), options.pop("parts", None)
        content_id = options.pop("content_id", None)
        checksums = options.pop("checksums", None)
        algorithm = options.pop("checksum_algorithm", "CRC64NVME")
        last_modified = options.pop("last_modified", None) or time.time()
        owner = options.pop("owner", bucket.owner)
        results = []
        for key, size in items:
            identity = content_id or store.new_content_id(f"{bucket_name}/{key}")
            if size == 0:
                content = Content.from_bytes(b"")
            else:
                content = store.virtual(size, identity, md5=None if parts else etag, checksums=checksums)
            if parts:
                object_etag = etag or hashlib.md5(f"{identity}/parts".encode()).hexdigest() + f"-{parts}"
            else:
                object_etag = store.md5(content)
            checksum = store.checksum(content, algorithm)
            bucket.put(ObjectRecord(
                key, content, object_etag, last_modified, owner, checksum_algorithm=algorithm, checksum_type="FULL_OBJECT",
                checksum=checksum, part_sizes=_even_parts(size, parts) if parts else None, **options,
            ))
            results.append({"ETag": object_etag, "Checksum": checksum, "ChecksumAlgorithm": algorithm})
        return results

    def stats(self) -> dict:
        """Counts so far: requests per operation, error codes answered and faults injected."""
        return self._call(lambda: {
            "operations": dict(self.app.operations),
            "errors": dict(self.app.error_codes),
            "faults": dict(self.app.injected),
        })


def _even_parts(size: int, parts: int) -> tuple[int, ...]:
    part = -(-size // parts)
    sizes = [part] * (size // part) + ([size % part] if size % part else [])
    return tuple(sizes)
