"""Run one shard of a transfer: the one implementation behind the worker CLI and the provider's local backend."""

from __future__ import annotations

import time

from .checkpoints import CheckpointStore
from .copier import INTERRUPTED, StopSignal
from .manifest import Manifest
from .options import CopyOptions
from .report import ShardReport
from .runner import copy_rows
from .s3uri import S3Uri
from .sharding import PartSlice, planning, shard_work
from .split import copy_slice
from .throttle import AimdRate, RequestGovernor

#: Where, under a transfer's report prefix, the checkpoints of in-flight multipart copies live.
CHECKPOINTS_FOLDER = "checkpoints/"
#: How often a running shard writes its summary so far (``ShardReport.publish_progress``), at most.
PROGRESS_SECONDS = 30


def run_shard(client, manifest_uri: str, options: CopyOptions, report_uri: str, shard_index: int = 0,
              shard_count: int = 1, stop: StopSignal | None = None) -> dict:
    """Copy the rows of shard ``shard_index`` of ``shard_count`` of the manifest, upload the shard's report
    under ``report_uri`` and return its summary (see ``ShardReport.summary``; ``failed`` counts failed rows,
    ``retried_requests`` the requests botocore sent again after a throttle, 5xx or network fault).

    With ``options.split_objects_over``, objects that large may be split between shards (``split.py``).
    Multipart copies keep checkpoints under ``report_uri``, so a re-run of the shard with the same report prefix
    resumes them. When ``stop`` is requested the run ends early and uploads a partial report (``partial`` true
    in the summary): the rows not done are left for the next attempt. While it runs, the shard's summary so far
    is written every ``PROGRESS_SECONDS`` (at the next finished row), for the sensor's progress lines."""
    manifest = Manifest(client, manifest_uri)
    work = shard_work(manifest.rows, shard_index, shard_count, **planning(options), sizes=manifest.sizes)
    slices: list[PartSlice] = []

    def rows():
        for item in work:
            if isinstance(item, PartSlice):
                slices.append(item)  # a shard with a slice holds nothing else: it is copied after the rows
            else:
                yield item

    report = ShardReport(shard_index, shard_count)
    checkpoints = CheckpointStore(client, str(S3Uri.parse(report_uri).join(CHECKPOINTS_FOLDER)))
    # Requests are paced once S3 throttles, so throttled copies are retried at the governor's pace (``paced``).
    governor = RequestGovernor(AimdRate())
    governor.attach(client)
    next_progress = time.monotonic() + PROGRESS_SECONDS

    def record(result) -> None:
        nonlocal next_progress
        report.add(result)
        if time.monotonic() >= next_progress:
            report.publish_progress(client, report_uri)
            next_progress = time.monotonic() + PROGRESS_SECONDS

    try:
        rows_left = copy_rows(client, rows(), options, record, checkpoints, stop, paced=True)
        for piece in slices:
            result = copy_slice(client, piece, options, checkpoints, stop, paced=True)
            if result is not None:
                report.add(result)
        report.partial = rows_left or report.tally.failures_by_code[INTERRUPTED] > 0
        report.requests = governor.counts()
        csv_uri, json_uri = report.upload(client, report_uri)
    finally:
        governor.detach(client)
        report.close()
    return {**report.summary(), "report_csv": csv_uri, "report_json": json_uri}
