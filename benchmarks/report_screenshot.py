"""Regenerate ``docs/images/transfer-report.png``: the HTML report of a real transfer, shot with headless Chromium.

Run: ``.venv/bin/python -m benchmarks.report_screenshot`` (needs Debian's ``chromium``: ``apt-get install -y
chromium``). It starts moto's S3 server on 127.0.0.1, fills three provider buckets with a small media mix
(sidecars, proxies, a few masters copied by parts, some already at the destination, two missing objects and
one archived object that fail), copies them with the engine in four shards running side by side (as the
children of an AWS Batch array job do), merges the reports (``transfer.html`` among them) and screenshots the
page. Not part of ``make test``; ``tests/provider/test_html_report.py`` checks the page's numbers.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.engine_on_moto import _start_moto
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.report import merge_reports
from mxtransfer_worker.report import ShardReports
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.shard import run_shard

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "transfer-report.png"
PROVIDERS = ("acme-studios-masters", "northwind-news-archive", "globex-sport-exports")
DESTINATION, WORK = "mx-aggregate-media", "mx-transfer-work"
SHARDS = 4
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def seed(s3) -> list[str]:
    """The buckets and objects; returns the manifest's lines."""
    rng = random.Random(7)
    for bucket in (*PROVIDERS, DESTINATION, WORK):
        s3.create_bucket(Bucket=bucket)
    lines = []
    for provider in PROVIDERS:
        show = provider.split("-")[0]  # keys differ across providers: they all land in one destination
        objects = [(f"{show}/sidecars/{n:03d}.xml", rng.randint(300, 60_000)) for n in range(60)]
        objects += [(f"{show}/proxies/{n:03d}.mp4", rng.randint(1, 6) * MiB + rng.randint(0, MiB)) for n in range(14)]
        objects += [(f"{show}/masters/{n}.mxf", rng.choice((12, 18, 24)) * MiB) for n in range(2)]
        for key, size in objects:
            s3.put_object(Bucket=provider, Key=key, Body=rng.randbytes(size) if size > MiB else b"m" * size)
            lines.append(f"{provider},{key}")
        for key, _ in objects[:8]:  # already delivered by an earlier run
            s3.copy_object(Bucket=DESTINATION, Key=key, CopySource={"Bucket": provider, "Key": key})
    s3.put_object(Bucket=PROVIDERS[1], Key="northwind/masters/archived.mxf", Body=b"a" * 1000,
                  StorageClass="GLACIER")
    lines += [f"{PROVIDERS[1]},northwind/masters/archived.mxf", f"{PROVIDERS[2]},globex/proxies/withdrawn.mp4",
              f"{PROVIDERS[2]},globex/proxies/renamed%20later.mp4"]
    return lines


def main() -> None:
    server, endpoint = _start_moto()
    try:
        s3 = make_s3_client(endpoint_url=endpoint)
        lines = seed(s3)
        s3.put_object(Bucket=WORK, Key="manifests/nightly.csv", Body="\n".join(lines).encode())
        report_uri = f"s3://{WORK}/reports/mxtransfer_aggregation-nightly/"
        options = CopyOptions(destination_bucket=DESTINATION, multipart_threshold=8 * MiB, part_size=5 * MiB,
                              copy_annotations=False)  # moto has no object annotations
        with ThreadPoolExecutor(SHARDS) as pool:
            list(pool.map(lambda index: run_shard(make_s3_client(endpoint_url=endpoint), f"s3://{WORK}/manifests/"
                                                  "nightly.csv", options, report_uri, index, SHARDS), range(SHARDS)))
        totals = merge_reports(s3, report_uri, [ShardReports(report_uri, SHARDS)]).totals
        print(f"{totals['rows']} objects: {totals['succeeded']} copied, {totals['skipped']} already there, "
              f"{totals['failed']} failed; {totals['report_html']}")
        with tempfile.TemporaryDirectory() as home:
            page = Path(home) / "transfer.html"
            page.write_bytes(s3.get_object(Bucket=WORK, Key="reports/mxtransfer_aggregation-nightly/transfer.html")
                             ["Body"].read())
            OUTPUT.parent.mkdir(exist_ok=True)
            subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={home}/profile",
                            f"--screenshot={OUTPUT}", "--window-size=1280,1560", page.as_uri()],
                           check=True, capture_output=True, timeout=120)
        print(f"wrote {OUTPUT}")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
