"""Issue 5's goals judged from one ``make bench`` run: for each goal whose scenario ran, the figure the run measured
and whether it meets the goal. Nothing here is typed in by hand: a run that misses a goal says so in its report."""

from __future__ import annotations

from benchmarks.suite.scenarios import (PUBLISHED_S, S3_SLOW_END, TiB, Scenario, modeled_copy, sequential_listing_s,
                                        speeds)

#: The goals' thresholds (issue 5, "Done when").
LIMIT_SHARE = 0.9
SMALL_VS_S5CMD = 1.5
LISTING_SPEED_UP = 4.0
RSS_MIB = 200.0
#: A fleet's SlowDowns count as a storm from this many per copy.
STORM_PER_COPY = 0.5
ENGINE = "mxtransfer engine"
S5CMD = "s5cmd"


def _finished(row: dict) -> bool:
    return bool(row["wall_s"]) and row["check"] in ("ok", "capped")


def _wall(row: dict) -> str:
    return ("~" if row["extrapolated"] else "") + f"{row['wall_s']:,.1f} s"


def _engine_rows(rows: list[dict]) -> list[dict]:
    """The rows of the engine's plain runs (one per worker count), however they ended."""
    return [row for row in rows if row["tool"] == ENGINE]


def _unfinished(goal: str, rows: list[dict]) -> list[tuple[str, str, bool]]:
    """The goal missed because the engine's runs did not all end checked ok: what each of them ended with."""
    ends = "; ".join(f"{row['tool']}, {row['workers']} worker(s): {row['check'] or 'no result'}" for row in rows
                     if not row["peer"] and row["check"] != "ok")
    return [(goal, f"the engine did not finish: {ends or 'it did not run'}", False)]


def _verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "–"}[met]


def _large(scenario: Scenario, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """Ahead of every peer that can copy the object; at ≥ 90% of the limit; the modeled time against half the
    published one."""
    limit, _ = scenario.limit()
    (_, size), = scenario.objects
    name = f"{size / TiB:g} TiB" if size >= TiB else scenario.title
    engines = [row for row in rows if not row["peer"] and row["check"] == "ok"]
    if not engines:
        return _unfinished(f"{name}: the engine copies it", rows)
    best = min(engines, key=lambda row: row["wall_s"])
    peers = [row for row in rows if row["peer"] and _finished(row)]
    cannot = [f"{row['tool']} cannot ({row['notes']})" for row in rows if row["check"] == "cannot"]
    ahead = None
    if peers:
        fastest = min(peers, key=lambda row: row["wall_s"])
        ahead = best["wall_s"] < fastest["wall_s"]
        versus = (f"the fastest peer, {fastest['tool']}, {_wall(fastest)}"
                  f" ({fastest['wall_s'] / best['wall_s']:,.1f} × the engine's)")
    else:
        versus = "no peer that can copy it ran"
    goals = [(f"{name} ahead of every peer that can copy it",
              "; ".join([f"the engine {_wall(best)}, {versus}", *cannot]), ahead),
             (f"{name} at ≥ {LIMIT_SHARE:.0%} of the limit",
              f"{limit / best['wall_s']:.0%} ({_wall(best)} against {limit:.2f} s; {best['tool']}, {best['workers']}"
              " worker(s), start-up and report included)", limit / best["wall_s"] >= LIMIT_SHARE)]
    published = PUBLISHED_S.get(size)
    if published and scenario.settings["copy_bandwidth"]:
        slower = {**scenario.settings, **S3_SLOW_END}
        modeled = [modeled_copy(size, 1, settings)[0] for settings in (scenario.settings, slower)]
        goals.append((f"{name} modeled at S3's speeds ≤ half the published {published / 60:.0f} minutes",
                      f"{modeled[0]:,.1f} s at {speeds(scenario.settings)}, {modeled[1]:,.1f} s at {speeds(slower)}"
                      f" (half: {published / 2:,.0f} s)", max(modeled) <= published / 2))
    return goals


def _small(scenario: Scenario, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """Objects per CPU-second against s5cmd's; wall time against the limit."""
    limit, _ = scenario.limit()
    engine = next(iter(_engine_rows(rows)), None)
    if engine is None or engine["check"] != "ok":
        return _unfinished(f"{scenario.title}: the engine copies them", rows)
    per_cpu = {row["tool"]: row["objects"] / row["cpu_s"] for row in rows
               if row["check"] == "ok" and row["cpu_s"] and row["tool"] in (ENGINE, S5CMD)}
    if S5CMD in per_cpu:
        ratio = per_cpu[ENGINE] / per_cpu[S5CMD]
        figure, met = (f"{ratio:.2f} × ({per_cpu[ENGINE]:,.0f} objects per CPU-second against s5cmd's"
                       f" {per_cpu[S5CMD]:,.0f})"), ratio >= SMALL_VS_S5CMD
    else:
        figure, met = f"{per_cpu[ENGINE]:,.0f} objects per CPU-second; s5cmd did not run", None
    return [(f"{scenario.title}: ≥ {SMALL_VS_S5CMD:g} × s5cmd in objects per CPU-second", figure, met),
            (f"{scenario.title} at ≥ {LIMIT_SHARE:.0%} of the limit", f"{limit / engine['wall_s']:.0%} ({_wall(engine)}"
             f" against {limit:.2f} s, start-up and report included)", limit / engine["wall_s"] >= LIMIT_SHARE)]


def _fleet_one(scenario: Scenario, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """Each worker count's pace while copying, on wall time, and its SlowDowns per copy."""
    limit, _ = scenario.limit()
    engines = sorted(_engine_rows(rows), key=lambda row: row["workers"])
    if not engines or any(row["check"] != "ok" or not row.get("landed_s") for row in engines):
        return _unfinished("fleet on one prefix: the engine copies it", rows)
    copies = len(scenario.objects)
    figure = "; ".join(f"{row['workers']} worker(s): {limit / row['landed_s']:.0%} while copying,"
                       f" {limit / row['wall_s']:.0%} on wall time, {row['slowdowns']:,.0f} SlowDowns"
                       for row in engines)
    met = all(limit / row["landed_s"] >= LIMIT_SHARE and row["slowdowns"] < STORM_PER_COPY * copies for row in engines)
    return [(f"fleet on one prefix: ≥ {LIMIT_SHARE:.0%} of the ceiling while copying, fewer SlowDowns than"
             f" {STORM_PER_COPY:g} per copy ({copies:,} copies)", figure, met)]


def _fleet_prefixes(scenario: Scenario, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The objects per second past one prefix's write ceiling."""
    engines = sorted(_engine_rows(rows), key=lambda row: row["workers"])
    ceiling = scenario.settings["write_rate"]
    if not engines or any(row["check"] != "ok" for row in engines):
        return _unfinished("fleet across prefixes: the engine copies it", rows)
    rates = {row["workers"]: len(scenario.objects) / row["wall_s"] for row in engines}
    return [(f"fleet across prefixes past one prefix's ceiling ({ceiling:,.0f} writes/s)",
             "; ".join(f"{workers} worker(s): {rate:,.0f} objects/s" for workers, rate in rates.items()),
             max(rates.values()) > ceiling)]


def _inventory(scenario: Scenario, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The engine's fastest listing against one sequential listing's floor, and its peak RSS."""
    listings = [row for row in rows if not row["peer"] and row["check"] == "ok"]
    if not listings:
        return _unfinished(f"{scenario.title}: the engine lists it", rows)
    best = min(listings, key=lambda row: row["wall_s"])
    floor = sequential_listing_s(scenario.objects, scenario.settings)
    speed_up = floor / best["wall_s"]
    return [(f"{scenario.title}: ≥ {LISTING_SPEED_UP:g} × one sequential listing at"
             f" {scenario.settings['latency_s'] * 1000:.0f} ms, peak RSS < {RSS_MIB:.0f} MB",
             f"{_wall(best)} ({best['tool']}): {speed_up:.1f} × the sequential listing's floor of {floor:,.1f} s;"
             f" peak RSS {best['rss_mib']:,.0f} MiB", speed_up >= LISTING_SPEED_UP and best["rss_mib"] < RSS_MIB)]


_JUDGES = {"large": _large, "huge": _large, "small": _small, "fleet-one-prefix": _fleet_one,
           "fleet-8-prefixes": _fleet_prefixes, "inventory": _inventory, "inventory-flat": _inventory}


def sharding_goal(rows: int, rss_mib: float) -> tuple[str, str, bool]:
    """The goal for sharding a manifest of ``rows`` rows, from the sharding process's peak RSS."""
    return (f"sharding a {rows:,}-row manifest, peak RSS < {RSS_MIB:.0f} MB", f"{rss_mib:,.0f} MiB",
            rss_mib < RSS_MIB)


def goals_markdown(scenarios: list[Scenario], results: dict[str, list[dict]],
                   extra: list[tuple[str, str, bool | None]] = ()) -> str:
    """The goals table of the scenarios that ran (and ``extra`` goals measured outside them)."""
    goals = [goal for scenario in scenarios if scenario.name in _JUDGES and scenario.name in results
             for goal in _JUDGES[scenario.name](scenario, results[scenario.name])]
    lines = ["## Goals", "", "Judged from this run's rows below (issue 5, \"Done when\"); **no** marks a goal this"
             " run missed.", "", "| goal | this run | met? |", "|---|---|---|"]
    lines += [f"| {goal} | {figure.replace('|', '/')} | {_verdict(met)} |" for goal, figure, met in [*goals, *extra]]
    return "\n".join(lines) + "\n"
