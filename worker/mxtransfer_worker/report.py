"""A shard's transfer report: one CSV row per manifest row and a JSON summary, written to S3."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone

from .copier import FAILED, SKIPPED, SUCCEEDED, CopyResult
from .s3uri import S3Uri

CSV_COLUMNS = ("line", "bucket", "key", "version_id", "destination_key", "status", "error_code", "message",
               "bytes", "seconds")


def report_names(shard_index: int, shard_count: int) -> tuple[str, str]:
    """The CSV and JSON object names of one shard's report under the report prefix."""
    stem = f"shard-{shard_index:05d}-of-{shard_count:05d}"
    return f"{stem}.csv", f"{stem}.json"


class ShardReport:
    """Collects one shard's results in a temporary file (not in memory) and uploads it with a summary."""

    def __init__(self, shard_index: int = 0, shard_count: int = 1):
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.counts: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.failures_by_code: Counter[str] = Counter()
        self.started_at = datetime.now(timezone.utc)
        self._started = time.monotonic()
        self._file = tempfile.TemporaryFile()
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(CSV_COLUMNS)

    def add(self, result: CopyResult) -> None:
        """Record one row's outcome."""
        row = result.row
        self._csv.writerow((row.line, row.bucket, row.key, row.version_id or "", result.destination_key,
                            result.status, result.error_code, result.message, result.bytes, result.seconds))
        self.counts[result.status] += 1
        self.bytes[result.status] += result.bytes
        if result.status == FAILED:
            self.failures_by_code[result.error_code] += 1

    @property
    def all_done(self) -> bool:
        """Whether every row succeeded or was skipped."""
        return self.counts[FAILED] == 0

    def summary(self) -> dict:
        """Counts, bytes and duration of the shard so far."""
        seconds = time.monotonic() - self._started
        return {
            "shard_index": self.shard_index, "shard_count": self.shard_count,
            "rows": sum(self.counts.values()),
            "succeeded": self.counts[SUCCEEDED], "skipped": self.counts[SKIPPED], "failed": self.counts[FAILED],
            "bytes_copied": self.bytes[SUCCEEDED], "bytes_skipped": self.bytes[SKIPPED],
            "failures_by_code": dict(self.failures_by_code),
            "started_at": self.started_at.isoformat(), "seconds": round(seconds, 3),
            "objects_per_second": round(sum(self.counts.values()) / seconds, 1) if seconds else None,
            "mib_per_second": round(self.bytes[SUCCEEDED] / 2**20 / seconds, 1) if seconds else None,
        }

    def upload(self, client, report_uri: str) -> tuple[str, str]:
        """Write the CSV and the JSON summary under ``report_uri``; returns their URIs."""
        csv_name, json_name = report_names(self.shard_index, self.shard_count)
        prefix = S3Uri.parse(report_uri)
        csv_uri, json_uri = prefix.join(csv_name), prefix.join(json_name)
        self._text.flush()
        self._file.seek(0)
        client.upload_fileobj(self._file, csv_uri.bucket, csv_uri.key, ExtraArgs={"ContentType": "text/csv"})
        client.put_object(Bucket=json_uri.bucket, Key=json_uri.key, ContentType="application/json",
                          Body=json.dumps(self.summary(), indent=2).encode())
        return str(csv_uri), str(json_uri)

    def close(self) -> None:
        """Discard the temporary file."""
        self._text.close()


#: Names of the merged transfer report under the report prefix.
TRANSFER_CSV, TRANSFER_JSON = "transfer.csv", "transfer.json"
_SUMMED = ("rows", "succeeded", "skipped", "failed", "bytes_copied", "bytes_skipped")


def read_summaries(client, report_uri: str, shard_count: int) -> dict[int, dict]:
    """The JSON summaries uploaded so far by the shards of a ``shard_count``-shard transfer, by shard index."""
    prefix = S3Uri.parse(report_uri).join("")
    suffix = f"-of-{shard_count:05d}.json"
    summaries = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key + "shard-"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(suffix) and "/" not in item["Key"][len(prefix.key):]:
                summary = json.loads(client.get_object(Bucket=prefix.bucket, Key=item["Key"])["Body"].read())
                summaries[summary["shard_index"]] = summary
    return summaries


def combine_summaries(summaries: list[dict]) -> dict:
    """Totals of shard summaries, with throughput over the wall time from the first start to the last end."""
    totals = {name: sum(summary[name] for summary in summaries) for name in _SUMMED}
    failures: Counter[str] = Counter()
    for summary in summaries:
        failures.update(summary["failures_by_code"])
    totals["failures_by_code"] = dict(failures)
    starts = [datetime.fromisoformat(summary["started_at"]).timestamp() for summary in summaries]
    ends = [start + summary["seconds"] for start, summary in zip(starts, summaries)]
    seconds = max(ends) - min(starts) if summaries else 0.0
    totals["seconds"] = round(seconds, 3)
    totals["objects_per_second"] = round(totals["rows"] / seconds, 1) if seconds else None
    totals["mib_per_second"] = round(totals["bytes_copied"] / 2**20 / seconds, 1) if seconds else None
    return totals


def first_errors(client, report_uri: str, shard_index: int, shard_count: int, limit: int = 3) -> list[dict]:
    """The first ``limit`` failed rows of one shard's CSV report (empty if the shard wrote no report)."""
    csv_name, _ = report_names(shard_index, shard_count)
    location = S3Uri.parse(report_uri).join(csv_name)
    try:
        body = client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
    except client.exceptions.NoSuchKey:
        return []
    errors = []
    try:
        for row in csv.DictReader(io.TextIOWrapper(body, encoding="utf-8", newline="")):
            if row["status"] == FAILED:
                errors.append(row)
                if len(errors) == limit:
                    break
    finally:
        body.close()
    return errors


def merge_reports(client, report_uri: str, shard_count: int) -> dict:
    """Concatenate the shard CSV reports (streamed, in shard order) into ``transfer.csv`` and write the totals to
    ``transfer.json`` under ``report_uri``; returns the totals, with ``missing_shards`` listing the shards that
    wrote no report."""
    prefix = S3Uri.parse(report_uri)
    summaries = read_summaries(client, report_uri, shard_count)
    missing = [index for index in range(shard_count) if index not in summaries]
    csv_uri, json_uri = prefix.join(TRANSFER_CSV), prefix.join(TRANSFER_JSON)
    with tempfile.TemporaryFile() as merged:
        merged.write((",".join(CSV_COLUMNS) + "\r\n").encode())
        for index in sorted(summaries):
            shard_csv = prefix.join(report_names(index, shard_count)[0])
            body = client.get_object(Bucket=shard_csv.bucket, Key=shard_csv.key)["Body"]
            try:
                body.readline()  # the shard's header
                for chunk in body.iter_chunks(1024 * 1024):
                    merged.write(chunk)
            finally:
                body.close()
        merged.seek(0)
        client.upload_fileobj(merged, csv_uri.bucket, csv_uri.key, ExtraArgs={"ContentType": "text/csv"})
    totals = {**combine_summaries([summaries[index] for index in sorted(summaries)]), "shard_count": shard_count,
              "shards_reported": len(summaries), "missing_shards": missing, "report_csv": str(csv_uri),
              "report_json": str(json_uri)}
    client.put_object(Bucket=json_uri.bucket, Key=json_uri.key, ContentType="application/json",
                      Body=json.dumps(totals, indent=2).encode())
    return totals
