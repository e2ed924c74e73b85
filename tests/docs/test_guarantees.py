"""The README's "Guarantees" section names tests that exist, so a promise cannot outlive the test that checks it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def guarantee_tests() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Guarantees"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", section)


def test_every_named_test_exists():
    named = guarantee_tests()
    assert len(named) >= 20
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in functions, f"README Guarantees names {path}::{name}, which does not exist"
