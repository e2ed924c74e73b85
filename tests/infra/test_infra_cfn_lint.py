"""cfn-lint (errors, warnings and informational checks) on every template in infra/templates."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from infra_testlib import TEMPLATES

TEMPLATE_FILES = sorted(TEMPLATES.glob("*.yaml"))
CONFIG = ManualArgs(regions=["us-east-1", "eu-west-1"], include_checks=["I"])


def test_templates_exist():
    names = {path.name for path in TEMPLATE_FILES}
    assert {"transfer-stack.yaml", "ecr.yaml"} <= names


@pytest.mark.parametrize("template", TEMPLATE_FILES, ids=lambda p: p.name)
def test_cfn_lint_clean(template):
    matches = lint_file(template, config=CONFIG)
    assert not matches, "cfn-lint:\n" + "\n".join(f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches)


def test_cfn_lint_is_really_linting():
    """The same call reports a broken template, so a clean result above means something."""
    for template in TEMPLATE_FILES:
        text = template.read_text()
        assert "    Type: AWS::" in text
        broken = text.replace("    Type: AWS::", "    Type: AWS::Nope", 1)
        matches = lint(broken, config=CONFIG)
        assert any(m.rule.id == "E3006" for m in matches), (template.name, matches)
