"""The HTML transfer report of a real local transfer (the ``local`` backend against moto's server): every number
on the page is checked against the CSV reports, and the page loads nothing (no script, no remote resource)."""

from __future__ import annotations

import bisect
import csv
import io
from collections import Counter, defaultdict
from html.parser import HTMLParser

from airflow_provider_mxtransfer.backends.local import LocalBackend
from airflow_provider_mxtransfer.transfer import TransferPlan
from mxtransfer_worker.errors import HINTS
from mxtransfer_worker.html_report import SIZE_BOUNDS
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.report import merge_reports, report_names

MiB = 2**20
SHARDS = 2
#: Objects per source bucket (two providers): sizes across several size classes.
SIZES = [0, 100, 3000, 70_000, 1_500_000, 6 * MiB]


class Fields(HTMLParser):
    """The ``data-field`` cells of a page, by the class of their table (``None`` outside tables) and row, and the
    ``data-total``/``data-count`` attributes of the charts."""

    def __init__(self):
        super().__init__()
        self.table = None
        self.rows: dict[str | None, list[dict]] = defaultdict(list)
        self.totals: list[str] = []
        self.bars: list[int] = []
        self._field = None
        self.cards: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("class")
        elif tag == "tr" and self.table:
            self.rows[self.table].append({})
        elif tag == "svg" and "data-total" in attrs:
            self.totals.append(attrs["data-total"])
        elif tag == "rect" and "data-count" in attrs:
            self.bars.append(int(attrs["data-count"]))
        if "data-field" in attrs:
            self._field = attrs["data-field"]
            if self.table and "data-value" in attrs:
                self.rows[self.table][-1][self._field] = int(attrs["data-value"])
                self._field = None

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        if self._field:
            if self.table:
                self.rows[self.table][-1][self._field] = data
            else:
                self.cards[self._field] = data
            self._field = None


def read_csv(s3, uri_bucket: str, key: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(s3.get_object(Bucket=uri_bucket, Key=key)["Body"].read().decode())))


def counts(rows: list[dict]) -> dict:
    statuses = Counter(row["status"] for row in rows)
    return {"rows": len(rows), "succeeded": statuses["succeeded"], "skipped": statuses["skipped"],
            "failed": statuses["failed"],
            "bytes_copied": sum(int(row["bytes"] or 0) for row in rows if row["status"] == "succeeded"),
            "bytes_skipped": sum(int(row["bytes"] or 0) for row in rows if row["status"] == "skipped")}


def test_the_html_report_of_a_local_transfer_matches_its_csv(s3, make_bucket, aws_connection):
    sources = [make_bucket("provider"), make_bucket("provider")]
    destination, work = make_bucket("dst"), make_bucket("work")
    lines = []
    for number, bucket in enumerate(sources):
        for index, size in enumerate(SIZES):
            s3.put_object(Bucket=bucket, Key=f"media/{number}-{index}.bin", Body=b"x" * size)
            lines.append(f"{bucket},media/{number}-{index}.bin")
    lines.append(f"{sources[1]},media/missing.mov")  # fails: NoSuchKey
    s3.put_object(Bucket=work, Key="manifest.csv", Body="\n".join(lines).encode())
    s3.copy_object(Bucket=destination, Key="media/0-2.bin", CopySource={"Bucket": sources[0], "Key": "media/0-2.bin"})

    report_uri = f"s3://{work}/reports/t-html/"
    plan = TransferPlan("t-html", f"s3://{work}/manifest.csv", CopyOptions(
        destination_bucket=destination, multipart_threshold=5 * MiB, part_size=5 * MiB, copy_annotations=False),
        SHARDS, report_uri)  # moto has no object annotations
    backend = LocalBackend(aws_conn_id=aws_connection)
    transfer = {**backend.submit(plan), "report_uri": report_uri}
    totals = merge_reports(s3, report_uri, backend.report_sources(transfer)).totals
    assert totals["report_html"] == f"{report_uri}transfer.html"

    page = s3.get_object(Bucket=work, Key="reports/t-html/transfer.html")
    assert page["ContentType"].startswith("text/html")
    text = page["Body"].read().decode()
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text
    fields = Fields()
    fields.feed(text)
    merged = read_csv(s3, work, "reports/t-html/transfer.csv")
    expected = counts(merged)
    assert [(row["key"], row["error_code"]) for row in merged if row["status"] == "failed"] == [
        ("media/missing.mov", "NoSuchKey")]
    assert expected == {"rows": 13, "succeeded": 11, "skipped": 1, "failed": 1,
                        "bytes_copied": 2 * sum(SIZES) - 3000, "bytes_skipped": 3000}

    # the totals cards
    assert {name: int(fields.cards[name]) for name in ("rows", "succeeded", "skipped", "failed")} == \
        {name: expected[name] for name in ("rows", "succeeded", "skipped", "failed")}
    assert int(fields.cards["bytes_copied_exact"].replace(",", "")) == expected["bytes_copied"]
    # one row per source bucket, per shard
    by_bucket = {row.pop("bucket"): row for row in fields.rows["by-bucket"] if row}
    assert by_bucket == {bucket: counts([row for row in merged if row["bucket"] == bucket]) for bucket in sources}
    by_shard = {int(row.pop("shard")): row for row in fields.rows["by-shard"] if row}
    assert by_shard == {index: counts(read_csv(s3, work, f"reports/t-html/{report_names(index, SHARDS)[0]}"))
                        for index in range(SHARDS)}
    # the failure, its count and hint
    assert int(fields.cards["failed-NoSuchKey"]) == 1 and HINTS["NoSuchKey"] in text
    assert f"s3://{sources[1]}/media/missing.mov" in text
    # the charts: every copied byte and object is in the throughput chart, every object in a size class
    assert [int(total) for total in fields.totals] == [expected["bytes_copied"], expected["succeeded"]]
    sizes = Counter(bisect.bisect_right(SIZE_BOUNDS, int(row["bytes"])) for row in merged if row["status"] != "failed")
    assert fields.bars == [sizes[index] for index in range(max(sizes) + 1)]  # up to the largest class with objects
    assert all(row["finished_at"] for row in merged)
