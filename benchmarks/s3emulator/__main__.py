"""Run the emulator: ``python -m benchmarks.s3emulator --port 0 --latency-ms 20`` prints its URL (its event loop on
stderr) and serves until interrupted (SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .model import EmulatorConfig
from .server import EVENT_LOOP, S3Emulator, tune_for_serving

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``123``, ``5M``, ``5GiB``, ``48T`` -> bytes (binary units)."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1] if text and text[-1] in _UNITS else ""
    return int(float(text[: len(text) - len(unit)]) * _UNITS[unit])


def parse_populate(text: str) -> tuple[str, str, int, int]:
    """``BUCKET[/PREFIX]:COUNT:SIZE`` -> (bucket, prefix, count, size)."""
    location, count, size = text.rsplit(":", 2)
    bucket, _, prefix = location.partition("/")
    return bucket, prefix, int(count), parse_size(size)


def build_parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3emulator", description=__doc__)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_s * 1000, help="per-request latency")
    parser.add_argument("--bandwidth-mbps", type=float, default=defaults.copy_bandwidth / 1e6,
                        help="per-stream copy bandwidth in MB/s (10^6 bytes); 0 = instant")
    parser.add_argument("--write-rate", type=float, default=defaults.write_rate,
                        help="PUT/COPY/POST/DELETE per second per prefix; 0 = no ceiling")
    parser.add_argument("--read-rate", type=float, default=defaults.read_rate, help="GET/HEAD per second per prefix; 0 = no ceiling")
    parser.add_argument("--fault-slowdown", type=float, default=0.0, help="probability of 503 SlowDown")
    parser.add_argument("--fault-500", type=float, default=0.0, help="probability of 500 InternalError")
    parser.add_argument("--fault-reset", type=float, default=0.0, help="probability of a connection reset")
    parser.add_argument("--fault-hang", type=float, default=0.0, help="probability of a hang until the client times out")
    parser.add_argument("--fault-200-error", type=float, default=0.0, help="probability of 200 with an error body on copies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small-object-max", type=parse_size, default=defaults.small_object_max,
                        help="objects up to this size keep their bytes")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM key of --tls-cert")
    parser.add_argument("--account", action="append", default=[], metavar="ACCESS_KEY=ACCOUNT_ID",
                        help="map an access key to an account id (repeatable)")
    parser.add_argument("--bucket", action="append", default=[], metavar="NAME[=ACCOUNT_ID]",
                        help="create a bucket at start (repeatable)")
    parser.add_argument("--populate", action="append", default=[], type=parse_populate, metavar="BUCKET[/PREFIX]:COUNT:SIZE",
                        help="create COUNT virtual objects of SIZE bytes named PREFIX000000... (repeatable)")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        host=args.host, port=args.port, latency_s=args.latency_ms / 1000, copy_bandwidth=args.bandwidth_mbps * 1e6,
        write_rate=args.write_rate, read_rate=args.read_rate, fault_slowdown_rate=args.fault_slowdown, fault_500_rate=args.fault_500,
        fault_reset_rate=args.fault_reset, fault_hang_rate=args.fault_hang, fault_200_error_rate=args.fault_200_error,
        seed=args.seed, small_object_max=args.small_object_max, tls_cert=args.tls_cert, tls_key=args.tls_key,
        accounts=dict(item.split("=", 1) for item in args.account),
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    tune_for_serving()
    emulator = S3Emulator(config_from_args(args))
    url = emulator.start()
    for spec in args.bucket:
        name, _, account = spec.partition("=")
        emulator.create_bucket(name, **({"account": account} if account else {}))
    for bucket, prefix, count, size in args.populate:
        if bucket not in emulator.store.buckets:
            emulator.create_bucket(bucket)
        emulator.put_virtual_objects(bucket, ((f"{prefix}{index:06d}", size) for index in range(count)))
    print(url, flush=True)
    print(f"S3 emulator on {EVENT_LOOP}", file=sys.stderr, flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    emulator.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
