"""Transfer reports: one CSV row per manifest row and a JSON summary per shard, written to S3, and their merge.

A transfer's row reports are *report sources*, each covering some of the transfer's shard indexes (numbered as
the provider's ``FleetStatus`` numbers them): ``ShardReports`` (what ``ShardReport`` wrote for the shards of a
run) and ``CompletionReport`` (an S3 Batch Operations job's completion report of the driver Lambda's answers).
A source has ``indexes``, ``summaries(client)`` (the JSON summaries written so far, by shard index) and
``rows(client, index)`` (that shard's rows as ``CSV_COLUMNS`` dicts, streamed; None when it wrote no report).
``report_totals`` reads progress from sources and ``merge_reports`` merges them into one report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError

from .copier import FAILED, SKIPPED, SUCCEEDED, CopyResult
from .html_report import HtmlReport
from .jsondoc import json_object
from .manifest import ManifestRow, ManifestStats, decode_key, upload_manifest
from .s3client import upload
from .s3uri import S3Uri

log = logging.getLogger(__name__)
CSV_COLUMNS = ("line", "bucket", "key", "version_id", "destination_key", "status", "error_code", "message",
               "bytes", "seconds", "finished_at")


def report_names(shard_index: int, shard_count: int) -> tuple[str, str]:
    """The CSV and JSON object names of one shard's report under the report prefix."""
    stem = f"shard-{shard_index:05d}-of-{shard_count:05d}"
    return f"{stem}.csv", f"{stem}.json"


class _Tally:
    """Rows, bytes and failure codes by status."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.failures_by_code: Counter[str] = Counter()

    def add(self, status: str, size: int, error_code: str) -> None:
        self.counts[status] += 1
        self.bytes[status] += size
        if status == FAILED:
            self.failures_by_code[error_code] += 1

    def counted(self) -> dict:
        """The counting fields of a shard summary."""
        return {"rows": sum(self.counts.values()), "succeeded": self.counts[SUCCEEDED],
                "skipped": self.counts[SKIPPED], "failed": self.counts[FAILED],
                "bytes_copied": self.bytes[SUCCEEDED], "bytes_skipped": self.bytes[SKIPPED],
                "failures_by_code": dict(self.failures_by_code)}


class ShardReport:
    """Collects one shard's results in a temporary file (not in memory) and uploads it with a summary."""

    def __init__(self, shard_index: int = 0, shard_count: int = 1):
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.tally = _Tally()
        #: Whether the run stopped before finishing every row (set by ``run_shard``).
        self.partial = False
        #: Request counts of the run (``RequestGovernor.counts``: requests, retried, throttled), when known.
        self.requests: dict = {}
        self.started_at = datetime.now(timezone.utc)
        self._started = time.monotonic()
        self._file = tempfile.TemporaryFile()
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(CSV_COLUMNS)
        self._second, self._second_text = -1, ""

    def add(self, result: CopyResult) -> None:
        """Record one row's outcome (finished now: ``finished_at`` is the time of this call, in UTC)."""
        row = result.row
        fields = (str(row.line), row.bucket, row.key, row.version_id or "", result.destination_key, result.status,
                  result.error_code, result.message, str(result.bytes), str(result.seconds), self._now())
        # csv's writer took 3 µs a row (a tenth of what a worker adds to a small copy in Python): fields without
        # a separator, quote or line break, which it would write as they are, are joined here instead
        line = ",".join(fields)
        if line.count(",") == len(CSV_COLUMNS) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
            self._text.write(line + "\r\n")
        else:
            self._csv.writerow(fields)
        self.tally.add(result.status, result.bytes, result.error_code)

    def _now(self) -> str:
        """Now in UTC as ``datetime.isoformat(timespec="milliseconds")`` writes it, the date and time of day made
        once a second (a ``datetime`` made and formatted per row took 2 µs)."""
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{nanoseconds // 1_000_000:03d}+00:00"

    @property
    def all_done(self) -> bool:
        """Whether every row succeeded or was skipped."""
        return self.tally.counts[FAILED] == 0

    def summary(self) -> dict:
        """Counts, bytes and duration of the shard so far, and whether the run stopped before finishing every
        row (``partial``: the next attempt resumes it)."""
        seconds = time.monotonic() - self._started
        counted = self.tally.counted()
        return {
            "shard_index": self.shard_index, "shard_count": self.shard_count, "partial": self.partial, **counted,
            **self.requests,
            "started_at": self.started_at.isoformat(), "seconds": round(seconds, 3),
            "objects_per_second": round(counted["rows"] / seconds, 1) if seconds else None,
            "mib_per_second": round(counted["bytes_copied"] / 2**20 / seconds, 1) if seconds else None,
        }

    def upload(self, client, report_uri: str) -> tuple[str, str]:
        """Write the CSV and the JSON summary under ``report_uri``, both at once; returns their URIs."""
        csv_name, json_name = report_names(self.shard_index, self.shard_count)
        prefix = S3Uri.parse(report_uri)
        csv_uri, json_uri = prefix.join(csv_name), prefix.join(json_name)
        self._text.flush()
        self._file.seek(0)
        with ThreadPoolExecutor(1, thread_name_prefix="mxtransfer-report") as pool:
            summary = pool.submit(self._put_summary, client, json_uri, self.summary())
            upload(client, self._file, csv_uri.bucket, csv_uri.key, ContentType="text/csv")
        summary.result()
        return str(csv_uri), str(json_uri)

    def publish_progress(self, client, report_uri: str) -> None:
        """Write the summary so far, marked ``in_progress``, where ``upload`` writes the final one, so that
        progress lines (``report_totals``) see the shard's counts while it runs. A failure is only logged: the
        copy goes on, and the final summary replaces this one."""
        json_uri = S3Uri.parse(report_uri).join(report_names(self.shard_index, self.shard_count)[1])
        try:
            self._put_summary(client, json_uri, {**self.summary(), "in_progress": True})
        except (BotoCoreError, ClientError) as error:
            log.warning("could not write the progress of shard %d to %s: %s", self.shard_index, json_uri, error)

    @staticmethod
    def _put_summary(client, json_uri: S3Uri, summary: dict) -> None:
        client.put_object(Bucket=json_uri.bucket, Key=json_uri.key, ContentType="application/json",
                          Body=json.dumps(summary, indent=2).encode())

    def close(self) -> None:
        """Discard the temporary file."""
        self._text.close()


#: Names of the merged transfer report under the report prefix.
TRANSFER_CSV, TRANSFER_JSON, TRANSFER_HTML = "transfer.csv", "transfer.json", "transfer.html"
_SUMMED = ("rows", "succeeded", "skipped", "failed", "bytes_copied", "bytes_skipped")
#: Request counts a shard summary may carry (S3 Batch Operations completion reports have none).
_REQUEST_COUNTS = ("requests", "retried_requests", "throttled_requests")
#: The format of S3 Batch Operations completion reports.
COMPLETION_REPORT_FORMAT = "Report_CSV_20180820"
#: How the driver Lambda (``lambda_driver``, which writes them from these constants) begins the result strings
#: of copied, already identical and handed-off objects; a failure's result string is ``<error code>: <message>``.
DRIVER_COPIED, DRIVER_IDENTICAL, DRIVER_HANDED_OFF = "copied to ", "already identical at ", "submitted to AWS Batch job "
_DRIVER_FAILURE = re.compile(r"([A-Za-z][A-Za-z0-9.]*): (.*)", re.DOTALL)


def combine_summaries(summaries: list[dict]) -> dict:
    """Totals of shard summaries, with throughput over the wall time from the first start (``started_at``) to
    the last end of the summaries that have timings (an S3 Batch Operations completion report has none), and
    over their rows and bytes only."""
    totals = {name: sum(summary[name] for summary in summaries) for name in _SUMMED}
    failures: Counter[str] = Counter()
    for summary in summaries:
        failures.update(summary["failures_by_code"])
    totals["failures_by_code"] = dict(failures)
    totals.update({name: sum(summary.get(name, 0) for summary in summaries) for name in _REQUEST_COUNTS})
    timed = [summary for summary in summaries if summary.get("started_at")]
    window = _wall_time(timed)
    seconds = window[1] - window[0] if window else 0.0
    totals["started_at"] = datetime.fromtimestamp(window[0], timezone.utc).isoformat() if window else None
    totals["seconds"] = round(seconds, 3)
    totals["objects_per_second"] = round(sum(summary["rows"] for summary in timed) / seconds, 1) if seconds else None
    totals["mib_per_second"] = (round(sum(summary["bytes_copied"] for summary in timed) / 2**20 / seconds, 1)
                                if seconds else None)
    return totals


def _wall_time(summaries: Iterable[dict]) -> tuple[float, float] | None:
    """``(first start, last end)`` in epoch seconds of the summaries that have timings; None if none has."""
    spans = [(start, start + summary["seconds"]) for summary in summaries if summary.get("started_at")
             for start in [datetime.fromisoformat(summary["started_at"]).timestamp()]]
    return (min(start for start, _ in spans), max(end for _, end in spans)) if spans else None


def _parse_summary(raw: bytes, shard_index: int) -> dict:
    """The JSON summary (``ShardReport.summary``) of shard ``shard_index`` in ``raw``, as ``combine_summaries``
    reads it; raises ``ValueError`` saying why ``raw`` is not one (e.g. written by another program, or by a
    version without some count)."""
    summary = json_object(raw)
    for name in ("shard_index", *_SUMMED, *(name for name in _REQUEST_COUNTS if name in summary)):
        if type(summary.get(name)) is not int:
            raise ValueError(f"its {name!r} is missing or not a whole number")
    if summary["shard_index"] != shard_index:
        raise ValueError(f"it is the summary of shard {summary['shard_index']}, not of shard {shard_index} as its "
                         "name says")
    failures = summary.get("failures_by_code")
    if not isinstance(failures, dict) or not all(type(count) is int for count in failures.values()):
        raise ValueError("its 'failures_by_code' is missing or not counts by error code")
    if summary.get("started_at") is not None:
        try:
            datetime.fromisoformat(summary["started_at"])
        except (TypeError, ValueError):
            raise ValueError(f"its 'started_at' is not a date and time ({summary['started_at']!r})") from None
        if type(summary.get("seconds")) not in (int, float):
            raise ValueError("its 'seconds' is missing or not a number")
    return summary


def _body(client, location: S3Uri):
    """The streaming body of an S3 object, or None if there is no such key."""
    try:
        return client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
    except client.exceptions.NoSuchKey:
        return None


def _records(body) -> Iterator[list[str]]:
    """The CSV records of an S3 object's body, streamed; the body is closed at the end."""
    try:
        yield from csv.reader(io.TextIOWrapper(body, encoding="utf-8", newline=""))
    finally:
        body.close()


class ShardReports:
    """The reports ``ShardReport`` wrote under ``report_uri`` for the shards of a ``shard_count``-shard run; its
    shard ``i`` is the transfer's shard ``first + i`` (an AWS Batch hand-off's one-shard run follows the S3 Batch
    Operations jobs)."""

    def __init__(self, report_uri: str, shard_count: int, first: int = 0):
        self.prefix = S3Uri.parse(report_uri).join("")
        self.shard_count = shard_count
        self.first = first

    @property
    def indexes(self) -> range:
        return range(self.first, self.first + self.shard_count)

    def summaries(self, client) -> dict[int, dict]:
        """The JSON summaries uploaded so far, by transfer shard index. One that cannot be read as a summary of
        its shard is left out with a warning naming it and why: summaries carry progress and timings, while the
        rows (``rows``) are what the merged report counts."""
        names = {report_names(index, self.shard_count)[1]: index for index in range(self.shard_count)}
        summaries = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.prefix.bucket,
                                                                      Prefix=self.prefix.key + "shard-"):
            for item in page.get("Contents", []):
                index = names.get(item["Key"][len(self.prefix.key):])
                if index is None:
                    continue
                raw = client.get_object(Bucket=self.prefix.bucket, Key=item["Key"])["Body"].read()
                try:
                    summaries[self.first + index] = _parse_summary(raw, index)
                except ValueError as problem:
                    log.warning("left out the shard summary s3://%s/%s: %s", self.prefix.bucket, item["Key"], problem)
        return summaries

    def rows(self, client, index: int) -> Iterator[dict] | None:
        body = _body(client, self.prefix.join(report_names(index - self.first, self.shard_count)[0]))
        if body is None:
            return None
        records = _records(body)
        header = next(records)
        return (dict(zip(header, record)) for record in records)


class CompletionReport:
    """The completion report (``Report_CSV_20180820``, scope ``AllTasks``) of an S3 Batch Operations job that
    invoked the driver Lambda, as the transfer's shard ``index``. ``manifest_uri`` is its ``manifest.json``
    (None when S3 wrote none), which lists the result CSV files.

    Each result row (``Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage``, the key
    URL-encoded) becomes a report row: the driver's result string says whether the object was copied or already
    identical, and where to; a failure's says its error code and message (else S3's own code, e.g.
    ``PermanentFailure``, stands). The driver's answers carry neither bytes nor seconds (left empty) nor the
    manifest line (empty). Objects the driver handed to AWS Batch are left out: the hand-off worker's report
    (a ``ShardReports`` source) has their final outcome. S3 writes the report only when the job ends, without
    timings, so it counts in merged reports, not in progress totals."""

    def __init__(self, index: int, manifest_uri: str | None):
        self.index = index
        self.manifest_uri = manifest_uri

    @property
    def indexes(self) -> tuple[int]:
        return (self.index,)

    def summaries(self, client) -> dict[int, dict]:
        return {}

    def rows(self, client, index: int) -> Iterator[dict] | None:
        body = _body(client, S3Uri.parse(self.manifest_uri)) if self.manifest_uri else None
        if body is None:
            return None
        not_one = f"{self.manifest_uri} is not a {COMPLETION_REPORT_FORMAT} completion report manifest"
        try:
            manifest = json_object(body.read(), not_one)
        finally:
            body.close()
        if manifest.get("Format") != COMPLETION_REPORT_FORMAT:
            raise ValueError(f"{not_one} (its Format is {manifest.get('Format')!r})")
        return self._rows(client, manifest.get("Results", []))

    @staticmethod
    def _rows(client, results: list[dict]) -> Iterator[dict]:
        for result in results:
            for record in _records(client.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"]):
                row = completion_row(record)
                if row is not None:
                    yield row


def completion_row(record: list[str]) -> dict | None:
    """The report row of one completion report record; None for an object handed to AWS Batch."""
    bucket, key, version_id, task_status, first_code, second_code, said = record
    # The documented column order is ErrorCode, HTTPStatusCode, but S3's example reports put the HTTP status
    # first: S3's code is whichever of the two is not a number.
    s3_code = next((code for code in (first_code, second_code) if code and not code.isdigit()), "")
    row = {"line": "", "bucket": bucket, "key": decode_key(key), "version_id": version_id, "destination_key": "",
           "status": FAILED, "error_code": "", "message": said, "bytes": "", "seconds": "", "finished_at": ""}
    if task_status != "succeeded":
        failure = _DRIVER_FAILURE.fullmatch(said)
        row["error_code"], row["message"] = failure.groups() if failure else (s3_code or "TaskFailed", said)
        return row
    if said.startswith(DRIVER_HANDED_OFF):
        return None
    row["status"] = SKIPPED if said.startswith(DRIVER_IDENTICAL) else SUCCEEDED
    for start in (DRIVER_COPIED, DRIVER_IDENTICAL):
        # "<start>s3://bucket/key: <message>": the copier's messages hold no ": ", keys may.
        where, _, message = said[len(start):].rpartition(": ")
        if said.startswith(start) and where.startswith("s3://"):
            row.update(destination_key=S3Uri.parse(where).key, message=message)
    return row


@dataclass
class MergedReport:
    """What ``merge_reports`` wrote: the totals (as in ``transfer.json``) and, by shard index, the first failed
    rows of each shard with failures."""

    totals: dict
    first_errors: dict[int, list[dict]]


def report_totals(client, sources: Iterable) -> dict:
    """Totals of the shard summaries written so far by a transfer's report sources (for progress lines)."""
    return combine_summaries([summary for source in sources for summary in source.summaries(client).values()])


def merge_reports(client, report_uri: str, sources: Iterable, errors_per_shard: int = 3) -> MergedReport:
    """Write the rows of a transfer's report sources (streamed, in source and shard order) to ``transfer.csv``,
    their totals to ``transfer.json`` and the page people read (``html_report``) to ``transfer.html`` under
    ``report_uri``. The totals count the rows; timings come from the sources' summaries; ``missing_shards``
    lists the shards that wrote no report. Rows of reports written before a column existed get it empty."""
    sources = list(sources)
    prefix = S3Uri.parse(report_uri)
    csv_uri, json_uri, html_uri = prefix.join(TRANSFER_CSV), prefix.join(TRANSFER_JSON), prefix.join(TRANSFER_HTML)
    timings = {index: summary for source in sources for index, summary in source.summaries(client).items()}
    page = HtmlReport(prefix.key.rstrip("/").rpartition("/")[2] or report_uri, _wall_time(timings.values()))
    tallies: dict[int, _Tally] = {}
    first_errors: dict[int, list[dict]] = {}
    missing = []
    with tempfile.TemporaryFile() as file, io.TextIOWrapper(file, encoding="utf-8", newline="") as merged:
        writer = csv.writer(merged)
        writer.writerow(CSV_COLUMNS)
        for source in sources:
            for index in source.indexes:
                rows = source.rows(client, index)
                if rows is None:
                    missing.append(index)
                    continue
                tally = tallies[index] = _Tally()
                for row in rows:
                    row = {name: row.get(name, "") for name in CSV_COLUMNS}
                    writer.writerow(row.values())
                    tally.add(row["status"], int(row["bytes"] or 0), row["error_code"])
                    page.add(index, row)
                    if row["status"] == FAILED and len(first_errors.setdefault(index, [])) < errors_per_shard:
                        first_errors[index].append(row)
        merged.flush()
        file.seek(0)
        upload(client, file, csv_uri.bucket, csv_uri.key, ContentType="text/csv")
    shards = [{**tallies[index].counted(), **{name: timings[index][name]
                                              for name in ("started_at", "seconds", *_REQUEST_COUNTS)
                                              if name in timings.get(index, {})}} for index in sorted(tallies)]
    totals = {**combine_summaries(shards), "shard_count": sum(len(source.indexes) for source in sources),
              "shards_reported": len(tallies), "missing_shards": missing, "report_csv": str(csv_uri),
              "report_json": str(json_uri), "report_html": str(html_uri)}
    client.put_object(Bucket=html_uri.bucket, Key=html_uri.key, ContentType="text/html; charset=utf-8",
                      Body=page.render(totals, timings, missing).encode())
    client.put_object(Bucket=json_uri.bucket, Key=json_uri.key, ContentType="application/json",
                      Body=json.dumps(totals, indent=2).encode())
    return MergedReport(totals, first_errors)


def failed_rows(client, report: str) -> Iterator[ManifestRow]:
    """The manifest rows of the failed rows of a report (a ``transfer.csv``, a shard's CSV, or a report prefix,
    meaning its ``transfer.csv``), streamed, in report order."""
    location = S3Uri.parse(report)
    if not location.key.endswith(".csv"):
        location = location.join(TRANSFER_CSV)
    body = _body(client, location)
    if body is None:
        raise FileNotFoundError(f"{location}: no such report (a transfer.csv is written when a transfer ends)")
    records = _records(body)
    header = next(records, None)
    if header is None or not set(("bucket", "key", "version_id", "status")) <= set(header):
        body.close()
        raise ValueError(f"{location} is not a transfer report: its header is {header}")
    for record in records:
        row = dict(zip(header, record))
        if row["status"] == FAILED:
            yield ManifestRow(row["bucket"], row["key"], row["version_id"] or None)


def failed_rows_manifest(client, report: str, manifest_uri: str) -> ManifestStats:
    """Write a manifest of the failed rows of ``report`` (see ``failed_rows``) at ``manifest_uri``, so that a
    transfer of it copies just those rows again."""
    return upload_manifest(client, failed_rows(client, report), manifest_uri)
