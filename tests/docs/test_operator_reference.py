"""``docs/operators.md`` against the operators themselves: every documented parameter exists with the documented
type, default and templated marker, and every real parameter is documented; the example DAGs of the cookbook and
the quick start use only real parameters and build."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator

from airflow_provider_mxtransfer.operators.cleanup import AbortStaleUploadsOperator
from airflow_provider_mxtransfer.operators.copy import S3BatchCopyOperator
from airflow_provider_mxtransfer.operators.inventory import GenerateInventoryOperator
from airflow_provider_mxtransfer.sensors.fleet import BatchFleetSensor

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATORS = {cls.__name__: cls for cls in (GenerateInventoryOperator, S3BatchCopyOperator, BatchFleetSensor,
                                           AbortStaleUploadsOperator)}
AWS_SECTION = "AWS parameters (all four)"
#: The Amazon provider's deprecated alias of ``region_name``: deliberately not documented.
UNDOCUMENTED_AWS = {"region"}


def sections(text: str) -> dict[str, list[dict[str, str]]]:
    """The rows of the parameter table under each ``## `` heading (backticks removed from the heading)."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip().strip("`")
            tables[heading] = []
        elif heading and line.startswith("| `"):
            cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            tables[heading].append(dict(zip(("name", "type", "default", "templated", "description"), cells)))
    return tables


def code(cell: str) -> str:
    """The first backticked text of a table cell."""
    match = re.search(r"`([^`]*)`", cell)
    assert match, f"no `code` in {cell!r}"
    return match.group(1)


def own_parameters(cls) -> dict[str, inspect.Parameter]:
    """The keyword parameters ``cls.__init__`` declares itself (not ``self``/``**kwargs``)."""
    return {name: parameter for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def default_sources(cls) -> dict[str, str]:
    """The source text of each keyword default of ``cls.__init__``."""
    function = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__))).body[0]
    return {arg.arg: ast.unparse(default) for arg, default in zip(function.args.kwonlyargs, function.args.kw_defaults)
            if default is not None}


def check_rows(rows: list[dict[str, str]], parameters: dict[str, inspect.Parameter], defaults: dict[str, str],
               template_fields) -> None:
    documented = {code(row["name"]): row for row in rows}
    assert set(documented) == set(parameters), "documented parameters differ from the signature"
    for name, row in documented.items():
        parameter = parameters[name]
        assert code(row["type"]) == parameter.annotation, f"{name}: type"
        if parameter.default is inspect.Parameter.empty:
            assert row["default"] == "required", f"{name}: default"
        elif code(row["default"]).startswith("[operators] default_deferrable"):
            assert "'default_deferrable'" in defaults[name], f"{name}: default is not the config option"
        else:
            assert ast.literal_eval(code(row["default"])) == parameter.default, f"{name}: default"
        assert row["templated"] in ("yes", "no"), f"{name}: templated is yes or no"
        assert (row["templated"] == "yes") == (name in template_fields), f"{name}: templated"
        assert row["description"], f"{name}: description"


@pytest.fixture(scope="module")
def reference() -> dict[str, list[dict[str, str]]]:
    return sections((DOCS / "operators.md").read_text())


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_table_matches_the_signature_and_template_fields(reference, name):
    cls = OPERATORS[name]
    assert reference.get(name), f"no parameter table for {name}"
    check_rows(reference[name], own_parameters(cls), default_sources(cls), cls.template_fields)


def test_aws_parameters_match_the_amazon_base_classes(reference):
    parameters = {name: parameter for name, parameter in own_parameters(AwsBaseOperator).items()
                  if name not in UNDOCUMENTED_AWS}
    for cls in OPERATORS.values():
        assert {name: p.default for name, p in own_parameters(cls.__mro__[1]).items()} == \
            {name: p.default for name, p in own_parameters(AwsBaseOperator).items()}, cls.__name__
        check_rows(reference[AWS_SECTION], parameters, {}, cls.template_fields)


def test_the_table_parser_sees_a_drifted_parameter(reference):
    drifted = [dict(row) for row in reference["BatchFleetSensor"]]
    drifted[-1]["name"] = "`terminate_jobs_on_kill`"
    with pytest.raises(AssertionError, match="documented parameters differ"):
        check_rows(drifted, own_parameters(BatchFleetSensor), default_sources(BatchFleetSensor),
                   BatchFleetSensor.template_fields)
    untemplated = [dict(row, templated="no") for row in reference["BatchFleetSensor"]]
    with pytest.raises(AssertionError, match="transfer: templated"):
        check_rows(untemplated, own_parameters(BatchFleetSensor), default_sources(BatchFleetSensor),
                   BatchFleetSensor.template_fields)


def example_blocks() -> list[str]:
    """The Python blocks of the pages with example DAGs."""
    return [block for page in ("cookbook.md", "index.md")
            for block in re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)]


def accepted_keywords(cls) -> set[str]:
    """Every keyword ``cls`` accepts: its own and those of the classes it passes ``**kwargs`` on to."""
    return {name for base in cls.__mro__ if "__init__" in vars(base)
            for name in inspect.signature(vars(base)["__init__"]).parameters}


def test_example_calls_use_only_real_parameters():
    calls = 0
    for block in example_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in OPERATORS:
                unknown = {keyword.arg for keyword in node.keywords} - accepted_keywords(OPERATORS[node.func.id])
                assert not unknown, f"{node.func.id} has no parameters {unknown}"
                calls += 1
    assert calls >= 13


@pytest.mark.parametrize("index", range(6))
def test_example_dags_build(index):
    blocks = [block for block in example_blocks() if "@dag(" in block]
    assert len(blocks) == 6
    namespace: dict = {}
    exec(compile(blocks[index], f"example DAG {index}", "exec"), namespace)
    (name,) = re.findall(r"^@dag\(.*?\)\ndef (\w+)\(", blocks[index], re.S | re.M)
    dag = namespace[name]()
    assert dag.task_ids and dag.dag_id == name
