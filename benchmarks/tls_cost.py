"""What HTTPS costs the worker's native client: ``python -m benchmarks.tls_cost [--requests 500] [--runs 3]``.

Starts the emulator over plain HTTP and over HTTPS (``s3emulator.tls.self_signed``: an RSA 2048 certificate, as
S3's are; in processes of their own) and sends ``--requests`` CopyObject requests at once through the engine's
native copy client (``crt_copy.CrtCopyClient``, as the worker does), each on a connection of its own, then as many
again on the connections they left open. Each round's CPU of this process per request, HTTP against HTTPS, tells
what TLS costs the worker on a new connection (a handshake: what each part of a large object's first burst pays)
and on a kept one (what small copies pay). The emulator answers every request after 0.2 s, so that all of a round
are in flight at once, and copies no bytes. Runs alternate between the two servers.

Rounds of 500 end within a second. Longer ones also count awscrt's event loop polling while they wait: each
connection has a task once a second, and the emulator's own handshakes (Python's ``ssl``, about 0.8 ms of its CPU
each) spread the connections' set-ups, and so their tasks, over the round (see ``parts.PART_BATCH_SECONDS``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.s3emulator.tls import self_signed
from benchmarks.suite.server import EmulatorProcess, process_cpu
from benchmarks.suite.tools import use_dummy_credentials

ROUNDS = ("new connections", "kept connections")
_SETTINGS = {"latency_s": 0.2, "copy_bandwidth": 0, "write_rate": 0, "read_rate": 0}


def cpu_per_request(requests: int, tls: dict) -> list[float]:
    """ms of this process's CPU per request in each of ``ROUNDS``, against an emulator with ``tls`` settings."""
    from mxtransfer_worker.crt_copy import CrtCopyClient
    from mxtransfer_worker.s3client import make_s3_client

    with EmulatorProcess(**_SETTINGS, **tls) as server:
        server.call("create_bucket", "src")
        server.call("populate", "src", [("object", 1000)])
        copies = CrtCopyClient(make_s3_client(endpoint_url=server.url, verify=tls.get("tls_cert")), requests)
        figures = []
        for _ in ROUNDS:
            started = process_cpu()
            answers = [copies.send("copy_object", {"Bucket": "src", "Key": f"copy-{number}",
                                                   "CopySource": {"Bucket": "src", "Key": "object"}})
                       for number in range(requests)]
            for answer in answers:
                answer.result()
            figures.append((process_cpu() - started) / requests * 1000)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="runs over each server (default 3)")
    args = parser.parse_args()
    use_dummy_credentials()
    os.environ.pop("AWS_CA_BUNDLE", None)  # each client is given its server's certificate check
    with tempfile.TemporaryDirectory() as work:
        servers = {"HTTP": {}, "HTTPS": self_signed(Path(work))}
        figures: dict[str, list[list[float]]] = {name: [] for name in servers}
        started = time.monotonic()
        for _ in range(args.runs):
            for name, tls in servers.items():
                figures[name].append(cpu_per_request(args.requests, tls))
    print(f"{args.requests:,} CopyObject requests at once per round, {args.runs} run(s) per server"
          f" ({time.monotonic() - started:.0f} s); client CPU per request, lowest to highest run:")
    for index, name in enumerate(ROUNDS):
        low = {server: min(run[index] for run in runs) for server, runs in figures.items()}
        high = {server: max(run[index] for run in runs) for server, runs in figures.items()}
        print(f"{name}: HTTP {low['HTTP']:.3f}-{high['HTTP']:.3f} ms, HTTPS {low['HTTPS']:.3f}-{high['HTTPS']:.3f} ms;"
              f" TLS adds {low['HTTPS'] - high['HTTP']:.3f}-{high['HTTPS'] - low['HTTP']:.3f} ms")


if __name__ == "__main__":
    main()
