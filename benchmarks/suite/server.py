"""The emulator in a process of its own, driven through a pipe, so that its CPU is never the client's.

The bench process creates buckets and virtual objects, reads request counts, follows a run's progress and
verifies destinations through ``EmulatorProcess``; the tools under test only see the HTTP endpoint.
"""

from __future__ import annotations

import multiprocessing
import resource
from typing import Self

from benchmarks.s3emulator import S3Emulator
from benchmarks.s3emulator.handlers import listing_entry
from benchmarks.s3emulator.server import tune_for_serving


def _serve(connection, overrides: dict) -> None:
    tune_for_serving()
    emulator = S3Emulator(**overrides)
    connection.send(emulator.start())
    while True:
        command, args = connection.recv()
        if command == "stop":
            emulator.stop()
            connection.send(None)
            return
        try:
            connection.send(("ok", _COMMANDS[command](emulator, *args)))
        except Exception as error:  # noqa: BLE001 - reported to the bench process
            connection.send(("error", f"{type(error).__name__}: {error}"))


def _populate(emulator: S3Emulator, bucket: str, objects: list[tuple[str, int]]) -> int:
    """Create the virtual objects and render their listing XML, so that the first tool to list them does not pay
    for a rendering the ones after it are spared."""
    if bucket not in emulator.store.buckets:
        emulator.create_bucket(bucket)
    for start in range(0, len(objects), 50_000):
        emulator.put_virtual_objects(bucket, objects[start:start + 50_000])
        _on_loop(emulator, _render_listing, bucket, [key for key, _ in objects[start:start + 50_000]])
    return len(objects)


def _render_listing(store, bucket: str, keys: list[str]) -> None:
    records = store.buckets[bucket].objects
    for key in keys:
        listing_entry(records[key])


def _on_loop(emulator: S3Emulator, function, *args):
    """Run ``function(store, *args)`` on the emulator's loop thread (its store is not thread-safe)."""
    return emulator._call(function, emulator.store, *args)


def _progress(store, bucket: str) -> tuple[int, int]:
    """Objects at ``bucket`` and their bytes plus the bytes of parts already copied into open uploads."""
    found = store.buckets.get(bucket)
    if found is None:
        return 0, 0
    done = sum(record.content.size for record in found.objects.values())
    done += sum(part.content.size for upload in found.uploads.values() for part in upload.parts.values())
    return len(found.objects), done


def _verify(store, source: str, destination: str, keys: list[str]) -> dict:
    """Counts of ``keys`` copied from ``source`` to ``destination`` with equal size and content, and not, and
    ``landed_s``: the seconds from the first of the good copies landing to the last (0 for fewer than two)."""
    src, dst = store.buckets[source], store.buckets.get(destination)
    good = missing = wrong = 0
    first = last = None
    for key in keys:
        original, copy = src.objects[key], dst.objects.get(key) if dst else None
        if copy is None:
            missing += 1
        elif copy.content.size == original.content.size and store.md5(copy.content) == store.md5(original.content):
            good += 1
            first = copy.last_modified if first is None else min(first, copy.last_modified)
            last = copy.last_modified if last is None else max(last, copy.last_modified)
        else:
            wrong += 1
    return {"good": good, "missing": missing, "wrong": wrong, "landed_s": last - first if good > 1 else 0.0}


def _drop(store, bucket: str) -> None:
    store.buckets.pop(bucket, None)


def process_cpu() -> float:
    """CPU seconds (user and system) this process has used so far (the emulator's, asked with ``call("cpu")``)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_COMMANDS = {
    "create_bucket": lambda emulator, name: emulator.create_bucket(name),
    "populate": _populate,
    "configure": lambda emulator, changes: emulator.configure(**changes),
    "stats": lambda emulator: emulator.stats(),
    "progress": lambda emulator, bucket: _on_loop(emulator, _progress, bucket),
    "verify": lambda emulator, *args: _on_loop(emulator, _verify, *args),
    "drop": lambda emulator, bucket: _on_loop(emulator, _drop, bucket),
    "cpu": lambda emulator: process_cpu(),
}


class EmulatorProcess:
    """``S3Emulator(**overrides)`` in a child process; ``url`` is its endpoint. Use as a context manager."""

    def __init__(self, **overrides) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, overrides), daemon=True)
        self._process.start()
        self.url: str = self._connection.recv()
        self.pid = self._process.pid

    def call(self, command: str, *args):
        self._connection.send((command, args))
        status, value = self._connection.recv()
        if status == "error":
            raise RuntimeError(f"emulator {command}: {value}")
        return value

    def requests(self) -> int:
        return sum(self.call("stats")["operations"].values())

    def close(self) -> None:
        if self._process.is_alive():
            self._connection.send(("stop", ()))
            self._connection.recv()
        self._process.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

