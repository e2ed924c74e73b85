"""The demo's world: provider buckets full of sample objects, the provider list pointing at them, the check
that every source object arrived, and the printed summary. Used by ``python -m demo`` and the DAG tests."""

from __future__ import annotations

import csv
import io
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from demo.checks import compare_prefix
from mxtransfer_worker.s3uri import S3Uri

MiB = 2**20
PROVIDERS = ("acme-studios", "northwind-news", "globex-sport")
#: The first provider's large object, copied by parts when the multipart threshold is below its size.
BIG_KEY = "exports/masters/feature film.mxf"
#: Key names that trip up naive tools: spaces, '+', '%', commas, quotes, non-ASCII, emoji, empty path segments.
ODD_NAMES = ("take one.mov", "a+b=c.mov", "100%.wav", "comma,separated.mxf", 'say "cut".mov', "ünïcødé.mov",
             "日本語.mov", "🎬 scene.mov", "double//slash.mov", "~tilde & amp.mov")


def seed(s3, objects_per_provider: int = 120, big_object_bytes: int = 40 * MiB) -> dict:
    """Create the provider, destination and work buckets and fill the providers' ``exports/`` prefixes with
    ``objects_per_provider`` small objects (odd keys, content type and metadata) plus, for the first provider,
    one object of ``big_object_bytes``; returns the provider list (``airflow_provider_mxtransfer.config``)."""
    suffix = uuid.uuid4().hex[:8]
    destination, work = f"mx-aggregate-{suffix}", f"mx-work-{suffix}"
    objects = []
    entries = []
    for name in PROVIDERS:
        bucket = f"{name}-{suffix}"
        for index in range(objects_per_provider):
            key = f"exports/day-{index % 7}/{index:04d} {ODD_NAMES[index % len(ODD_NAMES)]}"
            objects.append((bucket, key, os.urandom(64 + index * 97 % 16384), name))
        objects.append((bucket, "not-exported/draft.mov", b"outside the exported prefix", name))
        entries.append({"name": name, "source_bucket": bucket, "source_prefix": "exports/",
                        "aws_conn_id": f"aws_{name.replace('-', '_')}", "destination_prefix": f"providers/{name}/"})
    if big_object_bytes:
        objects.append((entries[0]["source_bucket"], BIG_KEY, os.urandom(big_object_bytes),
                        PROVIDERS[0]))
    for bucket in [destination, work] + [entry["source_bucket"] for entry in entries]:
        s3.create_bucket(Bucket=bucket)

    def put(item):
        bucket, key, body, provider = item
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="video/quicktime",
                      Metadata={"provider": provider, "origin-key": key.encode("ascii", "replace").decode()})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, objects))
    return {
        "destination": {"bucket": destination},
        "work": {"manifests": f"s3://{work}/manifests/", "reports": f"s3://{work}/reports/"},
        # moto has no S3 object annotation API, so the copy must not try to carry annotations
        "transfer": {"copy_options": {"copy_annotations": False}},
        "providers": entries,
    }


def verify(s3, config: dict) -> tuple[int, list[str]]:
    """Compare every exported source object with its copy (size, content hash, metadata); returns the number
    of objects checked and one line per problem (empty when everything arrived intact)."""
    checked, problems = 0, []
    for entry in config["providers"]:
        source = S3Uri(entry["source_bucket"], entry["source_prefix"])
        destination = S3Uri(config["destination"]["bucket"], entry["destination_prefix"])
        count, found = compare_prefix(s3, source, destination)
        checked += count
        problems += found
    return checked, problems


def copy_message(s3, report_csv_uri: str, key: str) -> str:
    """What a transfer report (``transfer.csv``) says about the copy of ``key``."""
    report = S3Uri.parse(report_csv_uri)
    text = s3.get_object(Bucket=report.bucket, Key=report.key)["Body"].read().decode("utf-8")
    for row in csv.DictReader(io.StringIO(text, newline="")):
        if row["key"] == key:
            return f"{row['status']}: {row['message']}"
    return "not in the report"


def format_summary(lines: list[dict]) -> str:
    """The run's summary (the aggregation DAG's ``summary.json`` providers) as a table."""
    header = (f"{'provider':<16} {'selected':>8} {'copied':>7} {'MiB copied':>10} {'skipped':>8} "
              f"{'identical':>9} {'failed':>6} {'seconds':>8} {'MiB/s':>7} {'obj/s':>7}")
    rows = [header, "-" * len(header)]
    for line in lines:
        rows.append(
            f"{line['provider']:<16} {line['selected_objects']:>8} {line['copied']:>7} "
            f"{line['bytes_copied'] / MiB:>10.1f} {line['skipped']:>8} {line['skipped_identical']:>9} "
            f"{line['failed']:>6} {line['seconds']:>8} {line['mib_per_second'] or 0:>7} "
            f"{line['objects_per_second'] or 0:>7}"
        )
    return "\n".join(rows)
