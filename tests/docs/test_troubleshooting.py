"""``docs/troubleshooting.md`` covers what the engine actually emits: every error code it can put in a report row,
every manifest error and every worker exit code (read from the engine's source and constants)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mxtransfer_worker import cli
from mxtransfer_worker.copier import INTERRUPTED
from mxtransfer_worker.errors import HINTS, TEMPORARY_CODES

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "worker" / "mxtransfer_worker"
PAGE = (ROOT / "docs" / "troubleshooting.md").read_text()

#: Where report rows get their error codes, besides ``HINTS`` and ``TEMPORARY_CODES``: (file, pattern).
CODE_LITERALS = [
    ("*.py", r'CopyError\(\s*"([^"]+)"'),                 # raised by the copier, checkpoints, classify()
    ("copier.py", r'CopyResult\([^)]*FAILED,\s*"([^"]+)"'),  # rows failed before any request
    ("lambda_driver.py", r'_failure\([^,]+,\s*"([^"]+)"'),  # the S3 Batch Operations driver's answers
    ("report.py", r's3_code or "([^"]+)"'),                # completion report rows without a code
]


def engine_codes() -> set[str]:
    codes = set(HINTS) | set(TEMPORARY_CODES) | {INTERRUPTED}
    for pattern, regex in CODE_LITERALS:
        found = {code for path in ENGINE.glob(pattern) for code in re.findall(regex, path.read_text())}
        assert found, f"no error codes found by {regex!r} in {pattern}: the engine's source changed"
        codes |= found
    return codes


def documented_codes(page: str) -> set[str]:
    """The backticked codes of the ``### `` headings."""
    return {code for line in page.splitlines() if line.startswith("### ") for code in re.findall(r"`([^`]+)`", line)}


def manifest_error_fragments() -> set[str]:
    """The fixed text of every ``ManifestError`` message in the engine (the parts between placeholders)."""
    source = (ENGINE / "manifest.py").read_text()
    fragments = set()
    for call in re.findall(r'ManifestError\(\s*((?:f?"[^"]*"\s*)+)', source):
        text = "".join(re.findall(r'"([^"]*)"', call))
        fragments |= {chunk.strip() for chunk in re.split(r"\{[^}]*\}", text) if len(chunk.strip()) >= 4}
    return fragments


def test_every_error_code_the_engine_reports_has_an_entry():
    codes = engine_codes()
    assert {"NoSuchKey", "DestinationExists", "VerificationFailed", "SlowDown", "TaskFailed"} <= codes
    assert codes - documented_codes(PAGE) == set()


def test_the_check_sees_a_code_without_an_entry():
    page = PAGE.replace("### `DestinationExists`", "### Destination exists")
    assert engine_codes() - documented_codes(page) == {"DestinationExists"}


def test_every_manifest_error_is_described():
    fragments = manifest_error_fragments()
    assert "blank line before the end of the file" in fragments
    assert {fragment for fragment in fragments if fragment not in PAGE} == set()


@pytest.mark.parametrize("code", [cli.EXIT_OK, cli.EXIT_ROWS_FAILED, cli.EXIT_BAD_INPUT, cli.EXIT_RETRY])
def test_every_worker_exit_code_is_in_the_table(code):
    table = PAGE[PAGE.index("## Worker exit codes"):]
    assert f"| `{code}` |" in table
