"""Where a worker's wall time goes on one large object: ``python -m benchmarks.worker_phases [--runs 3] [--tib 1]
[--tls]``.

Starts the emulator (the ``large`` scenario's S3-like settings, in a process of its own), writes a one-row manifest
with its sizes sidecar (as ``benchmarks.bench`` does) and runs the worker command on it, as the ``large`` scenario
runs it, ``--runs`` times. The worker runs under a wrapper that notes when each phase ends; they add up to the
worker's wall time: start (the process and the interpreter, up to the wrapper), imports, the S3 client, the
manifest (from the client to the first row), the copy (``copy_rows``), the report (``ShardReport.upload``), and
the end: from the report to the moment this process sees the worker's exit, which includes closing the native
client's connections (counted, as open descriptors, when the worker exits; the wall and the end leave out the time
the count takes, 18 ms for 7,500 descriptors). Each line also gives the worker's CPU and the emulator's. With
``--tls`` the emulator serves HTTPS with a self-signed certificate (``s3emulator.tls``) that the worker trusts
through ``AWS_CA_BUNDLE``, as a worker on S3 pays a TLS handshake on each of its connections.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.s3emulator.tls import self_signed
from benchmarks.suite.scenarios import S3_LIKE, TiB
from benchmarks.suite.server import EmulatorProcess
from benchmarks.suite.tools import ENGINE, base_env, use_dummy_credentials

#: Runs the worker's console entry point with marks on stderr: ``PHASE <name> <time.time()>`` (or a count).
_WRAPPER = r"""
import os, sys, time
def mark(name, value=None):
    sys.stderr.write(f"PHASE {name} {time.time() if value is None else value}\n")
mark("start")
import mxtransfer_worker.cli as cli, mxtransfer_worker.report as report, mxtransfer_worker.shard as shard
mark("imports")
def wrap(owner, name, before=None, after=None):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        if before:
            args = before(*args)
        try:
            return original(*args, **kwargs)
        finally:
            mark(after)
    setattr(owner, name, wrapper)
def first_row(client, rows, *rest):
    def marked():
        for number, row in enumerate(rows):
            if number == 0:
                mark("manifest")
            yield row
    return (client, marked(), *rest)
wrap(cli, "make_s3_client", after="client")
wrap(shard, "copy_rows", before=first_row, after="copy")
wrap(report.ShardReport, "upload", after="report")
exit_now = os._exit
def exit_counting(code):
    counting = time.time()
    mark("descriptors", len(os.listdir("/proc/self/fd")))
    mark("counting", time.time() - counting)
    sys.stderr.flush()
    exit_now(code)
os._exit = exit_counting
sys.argv = ["mxtransfer-worker", *sys.argv[1:]]
cli.console()
"""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_phases", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="worker runs (default 3)")
    parser.add_argument("--tib", type=float, default=1.0, help="object size in TiB (default 1)")
    parser.add_argument("--tls", action="store_true",
                        help="HTTPS, as on S3: the emulator with a self-signed certificate the worker trusts")
    args = parser.parse_args()
    use_dummy_credentials()
    with tempfile.TemporaryDirectory() as work:
        tls = self_signed(Path(work)) if args.tls else {}
        if tls:
            os.environ["AWS_CA_BUNDLE"] = tls["tls_cert"]  # this process's client, which writes the manifest
        with EmulatorProcess(**S3_LIKE, **tls) as server:
            time_runs(server, Path(work), args.runs, args.tib, tls.get("tls_cert"))


def time_runs(server: EmulatorProcess, work: Path, runs: int, tib: float, ca_bundle: str | None) -> None:
    """Fill the emulator with one object of ``tib`` TiB, then run the worker on it ``runs`` times (trusting
    ``ca_bundle``, if any) and print each run's phases."""
    from mxtransfer_worker.manifest import ManifestRow, upload_manifest
    from mxtransfer_worker.s3client import make_s3_client

    python = ENGINE.parent / "python"
    server.call("populate", "src", [("big/object", int(tib * TiB))])
    for bucket in ("dst", "control"):
        server.call("create_bucket", bucket)
    env = {**base_env(server.url, work), **({"AWS_CA_BUNDLE": ca_bundle} if ca_bundle else {})}
    client = make_s3_client(endpoint_url=server.url)
    head = client.head_object(Bucket="src", Key="big/object")
    upload_manifest(client, [ManifestRow("src", "big/object", size=head["ContentLength"], etag=head["ETag"])],
                    "s3://control/manifest.csv")
    names = ("start", "imports", "client", "manifest", "copy", "report")
    print("run  wall s  CPU s  emulator CPU s  " + "  ".join(f"{name:>8}" for name in (*names, "end"))
          + "  connections at exit")
    for run in range(runs):
        command = [str(python), "-c", _WRAPPER, "copy", "--no-copy-annotations", "--conditional-copy",
                   "--manifest", "s3://control/manifest.csv", "--destination", f"s3://dst/run-{run}/",
                   "--report", f"s3://control/report-{run}/"]
        server_cpu, before, started = server.call("cpu"), os.times(), time.time()
        worker = subprocess.run(command, env=env, capture_output=True, text=True)
        ended, after = time.time(), os.times()
        if worker.returncode:
            sys.exit(f"the worker failed ({worker.returncode}): {worker.stderr[-2000:]}")
        marks = {name: float(value) for name, value in
                 (line.split()[1:] for line in worker.stderr.splitlines() if line.startswith("PHASE "))}
        cpu = after.children_user - before.children_user + after.children_system - before.children_system
        ended -= marks["counting"]  # the count's own time
        ends = [marks[name] for name in names] + [ended]
        steps = [end - begin for begin, end in zip([started, *ends], ends)]
        print(f"{run:>3}  {ended - started:6.2f}  {cpu:5.2f}  {server.call('cpu') - server_cpu:14.2f}  "
              + "  ".join(f"{step:8.3f}" for step in steps)
              + f"  {marks['descriptors']:,.0f}")


if __name__ == "__main__":
    main()
