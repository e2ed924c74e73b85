"""The transfer report as one self-contained HTML page: totals, tables by source bucket (provider) and by shard,
the failures with their hints, and charts of throughput over time and of object sizes.

``HtmlReport`` takes the merged report's rows one at a time (``add``), keeping only aggregates (bounded by the
number of shards, source buckets, time bins, size classes and ``MAX_FAILED_ROWS``), so a report of millions of
rows renders in constant memory. The charts are inline SVG drawn here: no JavaScript, nothing loaded from the
internet, and no plotting library in the worker image (matplotlib alone would outweigh the worker's
dependencies). Every number is also in a table cell with a ``data-field`` attribute, for tests and scrapers.
"""

from __future__ import annotations

import bisect
import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone

from .copier import FAILED, SKIPPED, SUCCEEDED
from .errors import HINTS

MiB = 2**20
#: Failed rows listed one by one (the CSV has them all).
MAX_FAILED_ROWS = 200
#: Bins of the throughput chart.
TIME_BINS = 40
#: Upper bounds (exclusive) of the object size classes; the last class is open-ended.
SIZE_BOUNDS = (2**10, 2**16, 2**20, 2**24, 2**28, 2**30, 5 * 2**30, 2**40)
_SIZE_LABELS = ("< 1 KiB", "1-64 KiB", "64 KiB-1 MiB", "1-16 MiB", "16-256 MiB", "256 MiB-1 GiB", "1-5 GiB",
                "5 GiB-1 TiB", ">= 1 TiB")
_STATUSES = (SUCCEEDED, SKIPPED, FAILED)


def _counts() -> dict:
    return {"rows": 0, SUCCEEDED: 0, SKIPPED: 0, FAILED: 0, "bytes_copied": 0, "bytes_skipped": 0}


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _number(text: str) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def human_bytes(size: float) -> str:
    """``size`` bytes with a binary unit (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class HtmlReport:
    """Aggregates of a transfer's report rows, rendered as one HTML page by ``render``.

    ``window`` is the transfer's wall time ``(first start, last end)`` in epoch seconds, from the shard
    summaries; without it (or for rows without ``finished_at``) there is no throughput chart. A row's bytes are
    spread over the seconds it took (``finished_at - seconds`` to ``finished_at``), so one long multipart copy
    shows as a plateau, not a spike at its end."""

    def __init__(self, transfer_id: str, window: tuple[float, float] | None = None):
        self.transfer_id = transfer_id
        self.window = window if window and window[1] > window[0] else None
        self.by_shard: dict[int, dict] = defaultdict(_counts)
        self.by_bucket: dict[str, dict] = defaultdict(_counts)
        self.failures_by_code: Counter[str] = Counter()
        self.failed_rows: list[dict] = []
        self.sizes = [0] * len(_SIZE_LABELS)
        self.bytes_by_bin = [0.0] * TIME_BINS
        self.rows_by_bin = [0] * TIME_BINS

    def add(self, shard_index: int, row: dict) -> None:
        """Count one report row (a ``report.CSV_COLUMNS`` dict) of shard ``shard_index``."""
        status, size = row["status"], int(_number(row["bytes"]))
        for counts in (self.by_shard[shard_index], self.by_bucket[row["bucket"]]):
            counts["rows"] += 1
            counts[status] += 1
            if status == SUCCEEDED:
                counts["bytes_copied"] += size
            elif status == SKIPPED:
                counts["bytes_skipped"] += size
        if status == FAILED:
            self.failures_by_code[row["error_code"]] += 1
            if len(self.failed_rows) < MAX_FAILED_ROWS:
                self.failed_rows.append({**row, "shard": shard_index})
        elif row["bytes"] != "":  # an S3 Batch Operations completion report gives no sizes
            self.sizes[bisect.bisect_right(SIZE_BOUNDS, size)] += 1
        finished = _timestamp(row.get("finished_at", ""))
        if status == SUCCEEDED and finished is not None and self.window:
            self._spread(finished - _number(row["seconds"]), finished, size)

    def _spread(self, start: float, end: float, size: int) -> None:
        """Add ``size`` bytes and one object to the time bins, the bytes in proportion to overlap."""
        first, last = self.window
        width = (last - first) / TIME_BINS
        start, end = min(max(start, first), last), min(max(end, first), last)
        end_bin = min(int((end - first) / width), TIME_BINS - 1)
        self.rows_by_bin[end_bin] += 1
        if end <= start:
            self.bytes_by_bin[end_bin] += size
            return
        for index in range(int((start - first) / width), end_bin + 1):
            low, high = first + index * width, first + (index + 1) * width
            self.bytes_by_bin[index] += size * (min(high, end) - max(low, start)) / (end - start)

    def render(self, totals: dict, shard_timings: dict[int, dict] | None = None, missing_shards: Iterable[int] = (),
               title: str | None = None) -> str:
        """The page: ``totals`` as ``merge_reports`` computes them, ``shard_timings`` (shard summaries by index,
        for started_at and seconds) and the shards that wrote no report."""
        shard_timings = shard_timings or {}
        missing = sorted(missing_shards)
        title = title or f"Transfer {self.transfer_id}"
        parts = [_HEAD.format(title=html.escape(title)), f"<h1>{html.escape(title)}</h1>",
                 f"<p class=sub>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
                 f"{' from ' + html.escape(totals['report_csv']) if totals.get('report_csv') else ''}</p>",
                 self._totals(totals, missing), '<div class="charts">', self._throughput_chart(),
                 self._size_chart(), "</div>", self._failures(), self._bucket_table(),
                 self._shard_table(shard_timings, missing), "</body></html>\n"]
        return "\n".join(part for part in parts if part)

    def _totals(self, totals: dict, missing: list[int]) -> str:
        state = "failed" if totals["failed"] or missing else "succeeded"
        cards = [("Objects", totals["rows"], "rows"), ("Copied", totals["succeeded"], "succeeded"),
                 ("Already there", totals["skipped"], "skipped"), ("Failed", totals["failed"], "failed"),
                 ("Bytes copied", human_bytes(totals["bytes_copied"]), "bytes_copied"),
                 ("Wall time", f"{totals['seconds']:.1f} s", "seconds"),
                 ("Throughput", f"{totals['mib_per_second'] or 0} MiB/s", "mib_per_second")]
        html_cards = "".join(f'<div class="card{" bad" if field == "failed" and value else ""}"><div class=label>'
                             f'{label}</div><div class=value data-field="{field}">{html.escape(str(value))}'
                             f"</div></div>" for label, value, field in cards)
        exact = (f'<p class=sub><span data-field="bytes_copied_exact">{totals["bytes_copied"]:,}</span> bytes copied, '
                 f'{totals["bytes_skipped"]:,} bytes already there; '
                 f'{totals["objects_per_second"] or 0} objects/s; '
                 f'{totals.get("shard_count", len(self.by_shard))} shards'
                 + (f", <b>{len(missing)} without a report: {', '.join(map(str, missing[:20]))}</b>" if missing else "")
                 + "</p>")
        return (f'<p class="state {state}">Transfer {state}</p><div class=cards>{html_cards}</div>{exact}')

    def _throughput_chart(self) -> str:
        if not self.window or not any(self.rows_by_bin):
            return "<figure><figcaption>Throughput over time</figcaption><p class=sub>No per-row timings in this " \
                   "report (an S3 Batch Operations completion report has none).</p></figure>"
        first, last = self.window
        width = (last - first) / TIME_BINS
        mib_per_second = [value / MiB / width for value in self.bytes_by_bin]
        objects_per_second = [count / width for count in self.rows_by_bin]
        return (f"<figure><figcaption>Throughput over time (MiB/s, {width:.1f} s bins)</figcaption>"
                f"{line_chart(mib_per_second, last - first, '#2b7bb9', 'MiB/s', round(sum(self.bytes_by_bin)))}"
                f"</figure><figure><figcaption>Objects copied per second</figcaption>"
                f"{line_chart(objects_per_second, last - first, '#5aa05a', 'objects/s', sum(self.rows_by_bin))}"
                f"</figure>")

    def _size_chart(self) -> str:
        """Bars for the size classes up to the largest one that has objects."""
        shown = max((index for index, count in enumerate(self.sizes) if count), default=0) + 1
        return (f"<figure><figcaption>Object sizes (copied and already there)</figcaption>"
                f"{bar_chart(self.sizes[:shown], _SIZE_LABELS[:shown], '#8a6bbf')}</figure>")

    def _failures(self) -> str:
        if not self.failures_by_code:
            return ""
        codes = "".join(f"<tr><td><code>{html.escape(code)}</code></td><td class=num data-field=\"failed-{code}\">"
                        f"{count}</td><td>{html.escape(HINTS.get(code, ''))}</td></tr>"
                        for code, count in self.failures_by_code.most_common())
        rows = "".join(f"<tr><td class=num>{row['shard']}</td><td>s3://{html.escape(row['bucket'])}/"
                       f"{html.escape(row['key'])}</td><td><code>{html.escape(row['error_code'])}</code></td>"
                       f"<td>{html.escape(row['message'])}</td></tr>" for row in self.failed_rows)
        total = sum(self.failures_by_code.values())
        more = (f"<p class=sub>First {len(self.failed_rows)} of {total} failed objects; the CSV lists them all.</p>"
                if total > len(self.failed_rows) else "")
        return (f"<h2>Failures</h2><table><tr><th>Error</th><th>Objects</th><th>What to do</th></tr>{codes}</table>"
                f"<table class=rows><tr><th>Shard</th><th>Object</th><th>Error</th><th>Message</th></tr>{rows}"
                f"</table>{more}")

    def _bucket_table(self) -> str:
        rows = "".join(f'<tr><td data-field="bucket">{html.escape(bucket)}</td>{_count_cells(counts)}</tr>'
                       for bucket, counts in sorted(self.by_bucket.items()))
        return (f"<h2>By source bucket (provider)</h2><table class=by-bucket><tr><th>Source bucket</th>{_COUNT_HEADS}"
                f"</tr>{rows}</table>")

    def _shard_table(self, shard_timings: dict[int, dict], missing: list[int]) -> str:
        rows = []
        for index in sorted(set(self.by_shard) | set(missing)):
            timing = shard_timings.get(index, {})
            seconds = timing.get("seconds")
            counts = self.by_shard.get(index)
            rate = (f"{counts['bytes_copied'] / MiB / seconds:.1f}" if counts and seconds else "")
            cells = _count_cells(counts) if counts else '<td colspan=6 class="bad">no report</td>'
            started = (timing.get("started_at") or "")[:19].replace("T", " ")
            rows.append(f"<tr><td class=num data-field=\"shard\">{index}</td>{cells}<td>{html.escape(started)}</td>"
                        f"<td class=num>{seconds if seconds is not None else ''}</td><td class=num>{rate}</td></tr>")
        return (f"<h2>By shard</h2><table class=by-shard><tr><th>Shard</th>{_COUNT_HEADS}<th>Started</th>"
                f"<th>Seconds</th><th>MiB/s</th></tr>{''.join(rows)}</table>")


_COUNT_HEADS = "<th>Objects</th><th>Copied</th><th>Already there</th><th>Failed</th><th>Bytes copied</th>" \
               "<th>Bytes already there</th>"


def _count_cells(counts: dict) -> str:
    values = (("rows", counts["rows"]), (SUCCEEDED, counts[SUCCEEDED]), (SKIPPED, counts[SKIPPED]),
              (FAILED, counts[FAILED]), ("bytes_copied", counts["bytes_copied"]),
              ("bytes_skipped", counts["bytes_skipped"]))
    return "".join(f'<td class="num{" bad" if field == FAILED and value else ""}" data-field="{field}" '
                   f'data-value="{value}">{human_bytes(value) if field.startswith("bytes") else value}</td>'
                   for field, value in values)


_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM, _TOP = 560, 220, 56, 24, 40, 12


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def _axes(top: float) -> list[str]:
    """Horizontal grid lines with labels from 0 to ``top``."""
    plot_height = _HEIGHT - _BOTTOM - _TOP
    lines = []
    for step in range(5):
        value = top * step / 4
        y = _HEIGHT - _BOTTOM - plot_height * step / 4
        lines.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    return lines


def line_chart(values: list[float], seconds: float, colour: str, unit: str, total: float) -> str:
    """An SVG area chart of ``values`` spread evenly over ``seconds`` (x axis in seconds from the start);
    ``total`` (what the chart sums up, e.g. bytes) goes into its ``data-total`` attribute."""
    top = _nice_max(max(values))
    plot_width, plot_height = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _BOTTOM - _TOP
    step = plot_width / len(values)
    points = [(_LEFT + step * (index + 0.5), _HEIGHT - _BOTTOM - plot_height * value / top)
              for index, value in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    base = _HEIGHT - _BOTTOM
    area = f"{points[0][0]:.1f},{base} {path} {points[-1][0]:.1f},{base}"
    ticks = [f'<text x="{_LEFT + plot_width * i / 4:.1f}" y="{base + 16}" text-anchor="middle">'
             f"{seconds * i / 4:.0f} s</text>" for i in range(5)]
    return (f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{unit} over time" data-total="{total}">'
            f'{"".join(_axes(top))}<polygon points="{area}" fill="{colour}" fill-opacity="0.25"/>'
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>{"".join(ticks)}'
            f'<text x="{_LEFT}" y="{_HEIGHT - 4}" class="unit">{unit}, peak {max(values):.1f}</text></svg>')


def bar_chart(counts: list[int], labels: tuple[str, ...], colour: str) -> str:
    """An SVG bar chart of ``counts`` with one label under each bar."""
    top = _nice_max(max(counts))
    plot_width, plot_height = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _BOTTOM - _TOP
    slot = plot_width / len(counts)
    bars = []
    for index, (count, label) in enumerate(zip(counts, labels)):
        height = plot_height * count / top
        x = _LEFT + slot * index
        bars.append(f'<rect x="{x + slot * 0.15:.1f}" y="{_HEIGHT - _BOTTOM - height:.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{height:.1f}" fill="{colour}" data-count="{count}"><title>{label}: {count}</title></rect>'
                    f'<text x="{x + slot / 2:.1f}" y="{_HEIGHT - _BOTTOM + 14}" text-anchor="middle" '
                    f'class="small">{html.escape(label)}</text>'
                    + (f'<text x="{x + slot / 2:.1f}" y="{_HEIGHT - _BOTTOM - height - 3:.1f}" text-anchor="middle" '
                       f'class="small">{count}</text>' if count else ""))
    return (f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="object sizes">{"".join(_axes(top))}'
            f'{"".join(bars)}<text x="{_LEFT}" y="{_HEIGHT - 4}" class="unit">objects per size class</text></svg>')


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2733; margin: 24px 32px;
       max-width: 1200px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 17px; margin: 28px 0 8px; }}
.sub {{ color: #5b6775; margin: 4px 0; }}
.state {{ display: inline-block; padding: 3px 10px; border-radius: 4px; font-weight: 600; }}
.state.succeeded {{ background: #e3f4e6; color: #1e6b30; }} .state.failed {{ background: #fde8e8; color: #a12020; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }}
.card {{ border: 1px solid #d8dee6; border-radius: 6px; padding: 8px 14px; min-width: 110px; }}
.card .label {{ color: #5b6775; font-size: 12px; }} .card .value {{ font-size: 20px; font-weight: 600; }}
.card.bad .value, td.bad {{ color: #a12020; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 18px; }}
figure {{ margin: 0; flex: 1 1 520px; max-width: 600px; }} figcaption {{ font-weight: 600; margin-bottom: 4px; }}
svg {{ width: 100%; height: auto; background: #fbfcfd; border: 1px solid #e3e8ee; border-radius: 4px; }}
svg text {{ font-size: 11px; fill: #5b6775; }} svg text.small {{ font-size: 10px; }}
svg .grid {{ stroke: #e3e8ee; }} svg text.unit {{ font-size: 10px; }}
table {{ border-collapse: collapse; margin: 6px 0 12px; }}
th, td {{ border-bottom: 1px solid #e3e8ee; padding: 4px 10px; text-align: left; vertical-align: top; }}
th {{ background: #f3f6f9; font-weight: 600; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.rows td {{ word-break: break-all; }}
</style></head><body>"""
