"""The goals table ``make bench`` writes is judged from the run's rows: a row that misses a goal reads **no**."""

from __future__ import annotations

from functools import cache

from benchmarks.suite.goals import goals_markdown, sharding_goal
from benchmarks.suite.scenarios import scenarios


def _row(tool: str, wall_s: float, workers: int = 1, check: str = "ok", **values) -> dict:
    return {"tool": tool, "workers": workers, "wall_s": wall_s, "objects": 1, "cpu_s": 1.0, "rss_mib": 100.0,
            "slowdowns": 0, "check": check, "notes": "", "extrapolated": False,
            "peer": not tool.startswith("mxtransfer engine"), **values}


@cache
def _scenario(name: str):
    return next(scenario for scenario in scenarios(tiny=False) if scenario.name == name)


def _table(name: str, rows: list[dict]) -> dict[str, str]:
    """Goal -> verdict, from the markdown table."""
    text = goals_markdown([_scenario(name)], {name: rows})
    cells = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    return {cell[0].lstrip("| "): cell[-1].rstrip(" |") for cell in cells}


def test_a_large_copy_is_judged_against_its_peers_the_limit_and_the_published_times():
    limit, _ = _scenario("large").limit()
    near = _table("large", [_row("mxtransfer engine", limit / 0.95), _row("awscli", 198.0, check="capped"),
                            _row("s5cmd", None, check="cannot", notes="one CopyObject")])
    assert near == {"1 TiB ahead of every peer that can copy it": "yes", "1 TiB at ≥ 90% of the limit": "yes",
                    "1 TiB modeled at S3's speeds ≤ half the published 11 minutes": "yes"}
    far = _table("large", [_row("mxtransfer engine", limit / 0.58), _row("rclone", limit / 0.6)])
    assert far["1 TiB ahead of every peer that can copy it"] == "**no**"
    assert far["1 TiB at ≥ 90% of the limit"] == "**no**"


def test_small_objects_are_judged_per_cpu_second_against_s5cmd():
    limit, _ = _scenario("small").limit()
    engine = _row("mxtransfer engine", limit, objects=100_000, cpu_s=20.0)
    table = _table("small", [engine, _row("s5cmd", limit, objects=100_000, cpu_s=34.0)])
    assert table["100,000 objects of 1 MiB: ≥ 1.5 × s5cmd in objects per CPU-second"] == "yes"
    table = _table("small", [engine, _row("s5cmd", limit, objects=100_000, cpu_s=25.0)])
    assert table["100,000 objects of 1 MiB: ≥ 1.5 × s5cmd in objects per CPU-second"] == "**no**"
    table = _table("small", [engine])
    assert table["100,000 objects of 1 MiB: ≥ 1.5 × s5cmd in objects per CPU-second"] == "–"


def test_a_fleet_on_one_prefix_misses_its_goal_with_a_storm_of_slowdowns():
    limit, _ = _scenario("fleet-one-prefix").limit()
    rows = [_row("mxtransfer engine", limit * 1.1, workers=workers, landed_s=limit, slowdowns=1000)
            for workers in (1, 2, 4, 8)]
    (verdict,) = _table("fleet-one-prefix", rows).values()
    assert verdict == "yes"
    rows[-1]["slowdowns"] = 4000  # half of the 8,000 copies
    (verdict,) = _table("fleet-one-prefix", rows).values()
    assert verdict == "**no**"


def test_a_failed_engine_run_misses_the_goal():
    text = goals_markdown([_scenario("fleet-8-prefixes")], {"fleet-8-prefixes": [
        _row("mxtransfer engine", 3.0), _row("mxtransfer engine", 30.0, workers=4, check="capped"),
        _row("mxtransfer engine", None, workers=8, check="FAILED (exit [1])")]})
    assert ("| fleet across prefixes: the engine copies it | the engine did not finish: mxtransfer engine, 4 worker(s):"
            " capped; mxtransfer engine, 8 worker(s): FAILED (exit [1]) | **no** |") in text
    assert sharding_goal(1_000_000, 250.0)[2] is False and sharding_goal(1_000_000, 126.0)[2] is True
