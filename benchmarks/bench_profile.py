"""Where the engine's CPU goes per small-object copy: ``python -m benchmarks.bench_profile [--objects N]``.

Runs ``copy_rows`` (the engine's default options, as the worker CLI builds them, with ``--conditional-copy`` as
``make bench`` runs it) on N objects of 1 MiB, read from a manifest listed by the inventory step (sizes and
ETags), with the ``small`` scenario's emulator settings in a child process, twice: once alone, for its CPU per copy and requests
per copy, and once sampled by py-spy (``--gil``: only the thread that holds the GIL, i.e. Python's CPU;
installed in ``.bench-venv`` by ``make bench``) for the share of samples per source file (inclusive: a file
counts once per sample when any of its frames is on the stack) and per leaf function (self time).
``--tools`` measures others the same way: ``worker`` (the worker CLI as ``make bench`` runs it: start-up,
sharding, report and request governor included) and ``s5cmd``, in ``--rounds`` alternating rounds, so that
figures taken minutes apart on a shared machine can be compared; the first Python tool is the one sampled.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.suite.scenarios import S3_LIKE, MiB
from benchmarks.suite.server import EmulatorProcess
from benchmarks.bench import SOURCE, upload_listed_manifest
from benchmarks.suite.tools import BENCH_VENV, CONTROL_BUCKET, ENGINE, MANIFEST, S5CMD, base_env, use_dummy_credentials

#: What ``--tools`` can measure (see ``_command``).
TOOLS = ("copy_rows", "worker", "s5cmd")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def child(count: int) -> None:
    """Copy ``count`` objects with ``copy_rows`` and the engine's defaults (the endpoint from the environment),
    streaming the rows from the manifest the inventory step wrote (sizes and ETags in its sidecar), on an
    endpoint that honours conditional copies, as the worker does."""
    from mxtransfer_worker.manifest import open_manifest
    from mxtransfer_worker.options import CopyOptions
    from mxtransfer_worker.runner import copy_rows
    from mxtransfer_worker.s3client import make_s3_client

    options = CopyOptions(destination_bucket=os.environ["BENCH_DESTINATION"], copy_annotations=False,
                          conditional_copy=True)
    client = make_s3_client(max_pool_connections=options.connections)
    rows = open_manifest(client, MANIFEST)
    failed = []
    copy_rows(client, rows, options, lambda result: failed.append(result) if result.status == "failed" else None)
    if failed:
        raise SystemExit(f"{len(failed)} copies failed, first: {failed[0].message}")


def _command(tool: str, count: int, url: str, destination: str) -> list[str]:
    """The command line of one measured run of ``tool``."""
    if tool == "copy_rows":
        return [sys.executable, "-m", "benchmarks.bench_profile", "--child", "--objects", str(count)]
    if tool == "worker":  # as ``make bench`` runs it (benchmarks.suite.tools)
        return [str(ENGINE), "copy", "--no-copy-annotations", "--conditional-copy", "--manifest", MANIFEST,
                "--destination", f"s3://{destination}/", "--report", f"s3://{CONTROL_BUCKET}/reports/{destination}/"]
    return [str(S5CMD), "--endpoint-url", url, "cp", f"s3://{SOURCE}/*", f"s3://{destination}/"]


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "worker/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarize(stacks: Path, top: int) -> tuple[int, dict[str, list[tuple[str, float]]]]:
    """Samples, and the top files and functions (inclusive) and leaf functions (self) by share of samples."""
    files: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        frames = [match for match in frames if match]
        if not frames:
            continue
        total += count
        names = [f"{match['function']} ({_short(match['file'])})" for match in frames]
        for name in {_short(match["file"]) for match in frames}:
            files[name] += count
        for name in set(names):
            functions[name] += count
        leaves[names[-1]] += count
    share = lambda counter: [(name, value / total) for name, value in counter.most_common(top)]
    return total, {"Inclusive share by file": share(files), "Inclusive share by function": share(functions),
                   "Self share by function": share(leaves)}


def _run(server: EmulatorProcess, command: list[str], count: int, destination: str, scratch: Path) -> dict:
    """Run ``command`` (copying ``count`` objects to ``destination``) and measure it from outside."""
    server.call("create_bucket", destination)
    requests = server.requests()
    started = time.monotonic()
    process = subprocess.Popen(command, env={**base_env(server.url, scratch), "BENCH_DESTINATION": destination},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    check = server.call("verify", SOURCE, destination, [f"small/{index:07d}" for index in range(count)])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "requests": server.requests() - requests,
            "exit": os.waitstatus_to_exitcode(status), "check": check}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=5_000)
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=["copy_rows"])
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs of every tool")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--append", type=Path, help="append the figures as a section to this markdown file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.objects)
        return
    py_spy = BENCH_VENV / "py-spy"
    with EmulatorProcess(**S3_LIKE) as server, tempfile.TemporaryDirectory() as scratch:
        server.call("populate", SOURCE, [(f"small/{index:07d}", MiB) for index in range(args.objects)])
        server.call("create_bucket", CONTROL_BUCKET)
        use_dummy_credentials()  # for the manifest's upload; the runs get theirs from base_env
        upload_listed_manifest(server.url)
        lines = []
        for round_ in range(args.rounds):
            for tool in args.tools:
                destination = f"bench-dst-{tool.replace('_', '-')}-{round_}"
                run = _run(server, _command(tool, args.objects, server.url, destination), args.objects,
                           destination, Path(scratch))
                lines.append(f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()[0]:.1f}: "
                             f"{tool}: {args.objects:,} copies of 1 MiB objects, {S3_LIKE['latency_s'] * 1000:g} ms "
                             f"latency: {run['wall']:.1f} s wall, {args.objects / run['wall']:,.0f} copies/s, "
                             f"{run['cpu']:.1f} CPU s = {run['cpu'] / args.objects * 1000:.3f} ms CPU per copy, "
                             f"{run['requests'] / args.objects:.2f} requests per copy; exit status {run['exit']}; "
                             f"destination check {run['check']}")
                print(lines[-1], flush=True)
        sampled_tool = next((tool for tool in args.tools if tool != "s5cmd"), None)
        if sampled_tool is None:
            _report(lines, args.append)
            return
        if not py_spy.exists():
            _report(lines + ["py-spy not installed: no profile (make bench installs it into .bench-venv)"], args.append)
            return
        stacks = Path(scratch) / "stacks.txt"
        destination = "bench-dst-sampled"
        sampled = _run(server, [str(py_spy), "record", "--gil", "--rate", "250", "--format", "raw", "--output",
                                str(stacks), "--", *_command(sampled_tool, args.objects, server.url, destination)],
                       args.objects, destination, Path(scratch))
        total, tables = summarize(stacks, args.top)
    lines.append(f"Sampled run of {sampled_tool}: {sampled['wall']:.1f} s wall; {total:,} samples of the thread "
                 "holding the GIL")
    for title, shares in tables.items():
        lines += ["", f"{title}:", *(f"  {share:6.1%}  {name}" for name, share in shares)]
    _report(lines, args.append)


def _report(lines: list[str], markdown: Path | None) -> None:
    """Print the figures and, with ``markdown``, append them to that file as a section."""
    text = "\n".join(lines)
    print(text)
    if markdown:
        with markdown.open("a") as out:
            out.write(f"\n## Engine profile: CPU per small-object copy\n\n`python -m benchmarks.bench_profile`"
                      f" (`make bench-profile`), run after the tables above; {__doc__.split(chr(10) * 2)[1]}"
                      f"\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
