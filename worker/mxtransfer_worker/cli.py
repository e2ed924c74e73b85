"""``mxtransfer-worker``: the command the AWS Batch worker image runs (also ``python -m mxtransfer_worker``).

Exit codes: 0 every row succeeded or was skipped; 1 some rows failed (permanently, see the report);
2 bad arguments or a malformed manifest; 75 (EX_TEMPFAIL) a temporary failure worth retrying the job for,
or a run stopped by SIGTERM (AWS Batch's notice of a Spot reclaim, a timeout or a termination).

On SIGTERM the worker starts no new objects or parts, gives the parts in flight ``--grace-seconds`` to finish,
writes the checkpoints of unfinished multipart copies and its partial report, and exits 75; the next attempt
resumes the copies from their checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys

from botocore.exceptions import BotoCoreError, ClientError

from .cleanup import DEFAULT_MIN_IDLE_SECONDS, abort_stale_uploads
from .copier import StopSignal
from .errors import RedactingFilter, classify
from .manifest import ManifestError
from .native_s3 import refuse_proxy
from .options import CopyOptions
from .report import failed_rows_manifest
from .runner import client_connections
from .s3client import make_s3_client
from .s3uri import S3Uri
from .shard import run_shard

EXIT_OK, EXIT_ROWS_FAILED, EXIT_BAD_INPUT, EXIT_RETRY = 0, 1, 2, 75
#: AWS Batch sends SIGKILL 30 s after SIGTERM (timeouts, terminations, the ECS agent's default stop timeout):
#: the grace period leaves time to write checkpoints and the partial report before that.
DEFAULT_GRACE_SECONDS = 20.0
_UNITS = {"": 1, "B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6,
          "GB": 10**9, "TB": 10**12}

log = logging.getLogger("mxtransfer_worker")


def parse_size(text: str) -> int:
    """``"64MiB"`` → 67108864; plain integers are bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 67108864, 64MiB, 5GiB)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxtransfer-worker", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy one shard of a manifest server-side and write its report")
    copy.add_argument("--manifest", required=True, help="s3://bucket/key of the CSV manifest")
    copy.add_argument("--destination", required=True, help="s3://bucket/prefix/ to copy to")
    copy.add_argument("--report", required=True, help="s3://bucket/prefix/ for the report")
    copy.add_argument("--shard-index", type=int,
                      default=int(os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX", "0")),
                      help="this worker's shard (default: AWS_BATCH_JOB_ARRAY_INDEX, else 0)")
    copy.add_argument("--shard-count", type=int, default=1)
    copy.add_argument("--source-prefix", default="", help="prefix of source keys replaced by the destination prefix")
    copy.add_argument("--storage-class")
    copy.add_argument("--sse", choices=("AES256", "aws:kms"))
    copy.add_argument("--sse-kms-key-id")
    copy.add_argument("--acl", help="canned ACL, e.g. bucket-owner-full-control")
    copy.add_argument("--expected-source-owner", help="account id that must own the source buckets")
    copy.add_argument("--expected-destination-owner", help="account id that must own the destination bucket")
    copy.add_argument("--requester-pays", action="store_true")
    copy.add_argument("--overwrite", action="store_true", help="replace destinations that differ from the source")
    copy.add_argument("--no-copy-tags", dest="copy_tags", action="store_false")
    copy.add_argument("--no-copy-annotations", dest="copy_annotations", action="store_false")
    copy.add_argument("--conditional-copy", action=argparse.BooleanOptionalAction, default=None,
                      help="whether the endpoint honours If-None-Match on CopyObject, so a small listed object is "
                      "copied with one request (default: only for AWS's S3 endpoints)")
    copy.add_argument("--no-native-client", dest="native_client", action="store_false",
                      help="send copy requests through botocore instead of awscrt's native S3 client")
    defaults = CopyOptions(destination_bucket="unused")
    copy.add_argument("--multipart-threshold", type=parse_size, default=defaults.multipart_threshold)
    copy.add_argument("--part-size", type=parse_size, default=defaults.part_size)
    copy.add_argument("--object-concurrency", type=int, default=defaults.object_concurrency)
    copy.add_argument("--part-concurrency", type=int, default=defaults.part_concurrency)
    copy.add_argument("--max-attempts", type=int, default=defaults.max_attempts)
    copy.add_argument("--throttled-attempts", type=int, default=defaults.throttled_attempts,
                      help="attempts on SlowDown per object or part, besides --max-attempts")
    copy.add_argument("--split-objects-over", type=parse_size, default=defaults.split_objects_over,
                      help="objects of at least this size get shards of their own, and spare shards copy parts of "
                      "them side by side, the last to finish completing the upload (default: no splitting)")
    copy.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS,
                      help="after SIGTERM, how long parts in flight may take to finish (default: %(default)s; keep "
                      "it 10 s under the time between SIGTERM and SIGKILL, 30 s on AWS Batch)")
    cleanup = commands.add_parser("abort-stale-uploads", help="abort the incomplete multipart uploads a transfer "
                                  "left behind (only those its checkpoints name)")
    cleanup.add_argument("--destination", required=True, help="s3://bucket/prefix/ the transfer copied to")
    cleanup.add_argument("--report", required=True, help="s3://bucket/prefix/ of the transfer's report")
    cleanup.add_argument("--min-idle-seconds", type=float, default=DEFAULT_MIN_IDLE_SECONDS,
                         help="leave uploads whose checkpoint was written more recently (default: %(default)s)")
    cleanup.add_argument("--dry-run", action="store_true", help="only list what would be aborted")
    failed = commands.add_parser("failed-rows", help="write a manifest of the failed rows of a transfer report")
    failed.add_argument("--report", required=True, help="s3://... of a transfer.csv, or the report prefix")
    failed.add_argument("--manifest", required=True, help="s3://bucket/key of the manifest to write")
    return parser


def options_from_args(args: argparse.Namespace) -> CopyOptions:
    """The ``CopyOptions`` the command line asks for."""
    destination = S3Uri.parse(args.destination)
    return CopyOptions(
        destination_bucket=destination.bucket, destination_prefix=destination.key, source_prefix=args.source_prefix,
        storage_class=args.storage_class, sse=args.sse, sse_kms_key_id=args.sse_kms_key_id, acl=args.acl,
        expected_source_owner=args.expected_source_owner, expected_destination_owner=args.expected_destination_owner,
        requester_pays=args.requester_pays, overwrite=args.overwrite, copy_tags=args.copy_tags,
        copy_annotations=args.copy_annotations, conditional_copy=args.conditional_copy,
        native_client=args.native_client, multipart_threshold=args.multipart_threshold,
        part_size=args.part_size, object_concurrency=args.object_concurrency,
        part_concurrency=args.part_concurrency, max_attempts=args.max_attempts,
        throttled_attempts=args.throttled_attempts, split_objects_over=args.split_objects_over,
    )


def copy_arguments(manifest_uri: str, report_uri: str, shard_count: int, options: CopyOptions) -> list[str]:
    """The ``copy`` command line (without the program name) that runs a shard of this transfer with ``options``;
    the shard index comes from ``AWS_BATCH_JOB_ARRAY_INDEX``. The inverse of ``options_from_args``."""
    defaults = CopyOptions(destination_bucket="unused")
    if options.retry_base_delay != defaults.retry_base_delay:
        raise ValueError("retry_base_delay has no worker command-line flag: leave it at its default")
    arguments = ["copy", "--manifest", manifest_uri,
                 "--destination", str(S3Uri(options.destination_bucket, options.destination_prefix)),
                 "--report", report_uri, "--shard-count", str(shard_count)]
    for name in ("source_prefix", "storage_class", "sse", "sse_kms_key_id", "acl", "expected_source_owner",
                 "expected_destination_owner", "multipart_threshold", "part_size", "object_concurrency",
                 "part_concurrency", "max_attempts", "throttled_attempts", "split_objects_over"):
        value = getattr(options, name)
        if value != getattr(defaults, name):
            arguments += ["--" + name.replace("_", "-"), str(value)]
    arguments += [flag for flag, wanted in (("--requester-pays", options.requester_pays),
                                            ("--overwrite", options.overwrite),
                                            ("--no-copy-tags", not options.copy_tags),
                                            ("--no-copy-annotations", not options.copy_annotations),
                                            ("--conditional-copy", options.conditional_copy is True),
                                            ("--no-conditional-copy", options.conditional_copy is False),
                                            ("--no-native-client", not options.native_client)) if wanted]
    return arguments


def run_copy(args: argparse.Namespace, stop: StopSignal | None = None) -> int:
    """Copy one shard and upload its report; returns the exit code. ``stop`` ends the run early (exit 75)."""
    options = options_from_args(args)
    client = make_s3_client(max_pool_connections=client_connections(options))
    if options.native_client:
        refuse_proxy(client)  # before any request: each would go through the proxy, the copies past it
    summary = run_shard(client, args.manifest, options, args.report, args.shard_index, args.shard_count, stop)
    log.info("shard %d/%d %s: %s", args.shard_index, args.shard_count,
             "stopped early" if summary["partial"] else "done", json.dumps(summary))
    log.info("report: %s (summary %s)", summary["report_csv"], summary["report_json"])
    if summary["partial"]:
        return EXIT_RETRY
    return EXIT_OK if summary["failed"] == 0 else EXIT_ROWS_FAILED


def run_abort_stale_uploads(args: argparse.Namespace) -> int:
    """List and abort a transfer's stale uploads; exit 0."""
    client = make_s3_client()
    cleanup = abort_stale_uploads(client, args.destination, args.report, args.min_idle_seconds, args.dry_run)
    for name in cleanup.aborted:
        log.info("%s %s", "would abort" if args.dry_run else "aborted", name)
    log.info("stale uploads: %s", json.dumps(cleanup.summary()))
    return EXIT_OK


def run_failed_rows(args: argparse.Namespace) -> int:
    """Write the manifest of a report's failed rows; exit 0."""
    stats = failed_rows_manifest(make_s3_client(), args.report, args.manifest)
    log.info("%d failed rows of %s written to %s", stats.rows, args.report, args.manifest)
    return EXIT_OK


def _stop_on_sigterm(stop: StopSignal, grace_seconds: float):
    """Make SIGTERM request ``stop``; returns the previous handler."""

    def handle(signum, frame) -> None:
        if not stop.requested:
            log.warning("SIGTERM: stopping; parts in flight get %.0f s to finish", grace_seconds)
        stop.request(grace_seconds)

    return signal.signal(signal.SIGTERM, handle)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mxtransfer-worker`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(known, RedactingFilter) for known in handler.filters):
            handler.addFilter(RedactingFilter())
    args = _parser().parse_args(argv)
    if args.command != "copy":
        try:
            return {"abort-stale-uploads": run_abort_stale_uploads, "failed-rows": run_failed_rows}[args.command](args)
        except (ValueError, FileNotFoundError) as error:
            log.error("bad input: %s", error)
            return EXIT_BAD_INPUT
    stop = StopSignal()
    previous = _stop_on_sigterm(stop, args.grace_seconds)
    try:
        return run_copy(args, stop)
    except (ManifestError, ValueError) as error:
        log.error("bad input: %s", error)
        return EXIT_BAD_INPUT
    except (ClientError, BotoCoreError) as error:
        failure = classify(error, f"shard {args.shard_index}/{args.shard_count} of {args.manifest}")
        log.error("%s", failure.message)
        return EXIT_RETRY if failure.temporary else EXIT_BAD_INPUT
    finally:
        signal.signal(signal.SIGTERM, previous)


def console() -> None:
    """Entry point of the ``mxtransfer-worker`` console script and of ``python -m mxtransfer_worker``: ``main``,
    then the process ends at once with its exit code, its logs and output flushed. Python's own exit frees every
    module and object (botocore's, the clients, awscrt's native client): 0.1 CPU s and 0.2-0.3 s at
    the end of every worker, which on a shared machine (a fleet of workers, the benchmarks) lengthens the last
    shard's run; and part requests abandoned in flight after the grace period would hold it up."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
