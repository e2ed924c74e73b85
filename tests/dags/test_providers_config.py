"""The aggregation DAG's provider list: the example file is valid; mistakes give errors naming entry and cause;
the deployed stack's settings (the stacks file ``make outputs`` writes) fill in what the list leaves out."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from airflow_provider_mxtransfer.config import (
    STACK_ENV,
    STACKS_FILE_ENV,
    ConfigError,
    check_connections,
    choose_compute,
    load_config_file,
    parse_config,
    stack_defaults,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "config" / "providers.yaml"
EXAMPLE_STACKS = EXAMPLE.with_name("mxtransfer_stacks.example.json")
VALID = {
    "destination": {"bucket": "mx-aggregate", "aws_conn_id": "aws_main"},
    "work": {"manifests": "s3://mx-work/manifests", "reports": "s3://mx-work/reports/"},
    "transfer": {"copy_options": {"storage_class": "STANDARD_IA"}},
    "providers": [
        {"name": "acme", "source_bucket": "acme-media", "source_prefix": "out/", "aws_conn_id": "aws_acme",
         "destination_prefix": "providers/acme/", "include": "*.mov", "min_size": 1},
        {"name": "globex", "source_bucket": "globex-media", "aws_conn_id": "aws_globex",
         "destination_prefix": "providers/globex/"},
    ],
}


def broken(change):
    data = copy.deepcopy(VALID)
    change(data)
    return data


def test_the_example_file_is_valid():
    config = load_config_file(EXAMPLE)
    assert [provider.name for provider in config.providers] == ["acme-studios", "northwind-news", "globex-sport"]
    assert config.destination_bucket == "mx-aggregate-media" and config.job_queue is None  # from the stacks file
    assert config.providers[0].source_uri == "s3://acme-studios-masters/deliveries/"


def test_a_valid_document():
    config = parse_config(VALID, "test.yaml")
    acme, globex = config.providers
    assert (acme.include, acme.min_size, acme.source_prefix) == (("*.mov",), 1, "out/")
    assert (globex.source_prefix, globex.include, globex.source_uri) == ("", (), "s3://globex-media/")
    assert (config.manifest_root, config.report_root) == ("s3://mx-work/manifests/", "s3://mx-work/reports/")
    assert config.destination_conn_id == "aws_main" and config.copy_options == {"storage_class": "STANDARD_IA"}
    assert config.poll_interval == 60
    assert parse_config(broken(lambda d: d["transfer"].update(poll_interval=2.5)), "test.yaml").poll_interval == 2.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["providers"][1].pop("source_bucket"),
         r"test.yaml: providers\[1\] \(globex\): missing field 'source_bucket'"),
        (lambda d: d["providers"][0].pop("aws_conn_id"), r"providers\[0\] \(acme\): missing field 'aws_conn_id'"),
        (lambda d: d["providers"][0].update(source_bucket="Acme_Media"),
         r"providers\[0\] \(acme\): source_bucket: 'Acme_Media' is not a valid S3 bucket name"),
        (lambda d: d["providers"][1].update(destination_prefix="providers/acme/globex/"),
         r"destination prefixes overlap: 'acme' copies to s3://mx-aggregate/providers/acme/, which contains "
         r"'globex'"),
        (lambda d: d["providers"][1].update(destination_prefix="providers/acme"),
         "destination prefixes overlap"),
        (lambda d: d["providers"][1].update(destination_prefix="providers/acme/"),
         r"destination prefixes overlap: 'acme' copies to s3://mx-aggregate/providers/acme/, which contains "
         r"'globex''s s3://mx-aggregate/providers/acme/"),
        (lambda d: d["providers"][1].update(name="acme"), "two providers are named 'acme'"),
        (lambda d: d["providers"][0].update(source_prefx="x/"), r"unknown field 'source_prefx'"),
        (lambda d: d["providers"][0].update(destination_prefix=""), "missing field 'destination_prefix'"),
        (lambda d: d["providers"][0].update(destination_prefix="/abs/"), "not starting with '/'"),
        (lambda d: d["providers"][0].update(name="a b"), "name 'a b' must be"),
        (lambda d: d["providers"][0].update(max_size="big"), "max_size must be a whole number"),
        (lambda d: d["providers"][0].update(exclude=[""]), "exclude: expected a list of glob patterns"),
        (lambda d: d.update(providers=[]), "providers must be a non-empty list"),
        (lambda d: d.pop("work"), "missing field 'work'"),
        (lambda d: d["destination"].update(bucket="x"), r"destination.bucket: 'x' is not a valid S3 bucket name"),
        (lambda d: d["work"].update(reports="mx-work/reports"), "work.reports: not an s3:// URI"),
        (lambda d: d["work"].update(manifests="s3://MX_Work/m/"),
         r"work.manifests: 'MX_Work' is not a valid S3 bucket name"),
        (lambda d: d["transfer"].update(copy_options={"part_size": 1}), "transfer.copy_options: part_size must be"),
        (lambda d: d["transfer"].update(copy_options={"source_prefix": "a/"}), "source_prefix is set per provider"),
        (lambda d: d["transfer"].update(copy_options={"colour": "red"}), "transfer.copy_options: .*colour"),
        (lambda d: d["transfer"].update(poll_interval=0), "transfer.poll_interval must be a positive number of "
                                                          "seconds, got 0"),
        (lambda d: d["transfer"].update(poll_interval="1m"), "transfer.poll_interval must be a positive number"),
    ],
)
def test_mistakes_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(broken(change), "test.yaml")


def test_connections_the_list_names_must_exist():
    config = parse_config(broken(lambda d: d["providers"].append(
        {"name": "initech", "source_bucket": "initech-media", "aws_conn_id": "aws_acme",
         "destination_prefix": "providers/initech/"})), "test.yaml")
    check_connections(config, "test.yaml", {"aws_main", "aws_acme", "aws_globex"}.__contains__)
    with pytest.raises(ConfigError) as error:
        check_connections(config, "test.yaml", {"aws_globex"}.__contains__)
    assert str(error.value) == (
        "test.yaml: unknown Airflow connection 'aws_main' (used by destination.aws_conn_id); 'aws_acme' (used by "
        "providers[0] (acme), providers[2] (initech)): create an AWS connection with that id (for a provider, one "
        'whose extra names the role that may list its bucket: {"role_arn": "arn:aws:iam::<account>:role/<role>"})')


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the provider list"):
        load_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config_file(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([VALID]))
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_config_file(listed)


def test_compute_choice(monkeypatch):
    monkeypatch.delenv("MXTRANSFER_COMPUTE", raising=False)
    assert choose_compute(None) == "batch"
    assert choose_compute("s3-batch-operations") == "s3-batch-operations"
    monkeypatch.setenv("MXTRANSFER_COMPUTE", "local")
    assert choose_compute("batch") == "local"
    monkeypatch.setenv("MXTRANSFER_COMPUTE", "lambda")
    with pytest.raises(ConfigError, match="unknown compute backend 'lambda' .from MXTRANSFER_COMPUTE"):
        choose_compute(None)


def _stacks_file(tmp_path, **sides) -> Path:
    """A stacks file with one stack per side (``subscriber={...outputs}``), as ``make outputs`` writes it."""
    stacks = {f"mxt-{side}": {"stack_name": f"mxt-{side}", "side": side, "job_queue_arn": f"arn:queue/{side}",
                              "job_definition_name": f"mxt-{side}-worker", "manifest_uri": f"s3://work-{side}/m",
                              "report_uri": f"s3://work-{side}/r/", **outputs}
              for side, outputs in sides.items()}
    path = tmp_path / "mxtransfer_stacks.json"
    path.write_text(json.dumps({"format": "mxtransfer-stacks/1", "stacks": stacks}))
    return path


def test_stack_defaults_come_from_the_example_stacks_file(monkeypatch):
    monkeypatch.delenv(STACKS_FILE_ENV, raising=False)
    monkeypatch.delenv(STACK_ENV, raising=False)
    assert stack_defaults(EXAMPLE_STACKS) == {
        "job_queue": "arn:aws:batch:us-east-1:123456789012:job-queue/mxtransfer-subscriber-queue",
        "job_definition": "mxtransfer-subscriber-worker",
        "manifests": "s3://mx-transfer-work/manifests/", "reports": "s3://mx-transfer-work/reports/"}


def test_stack_defaults_env_names_the_file_and_picks_a_stack_by_side_or_name(monkeypatch, tmp_path):
    path = _stacks_file(tmp_path, subscriber={}, publisher={})
    monkeypatch.setenv(STACKS_FILE_ENV, str(path))
    monkeypatch.setenv(STACK_ENV, "publisher")
    assert stack_defaults(tmp_path / "ignored.json") == {"job_queue": "arn:queue/publisher",
                                                         "job_definition": "mxt-publisher-worker",
                                                         "manifests": "s3://work-publisher/m/",
                                                         "reports": "s3://work-publisher/r/"}
    monkeypatch.setenv(STACK_ENV, "mxt-subscriber")
    assert stack_defaults(tmp_path / "ignored.json")["job_queue"] == "arn:queue/subscriber"
    monkeypatch.setenv(STACKS_FILE_ENV, str(tmp_path / "absent.json"))
    assert stack_defaults(path) == {}  # the variable wins over the default path; no file, no defaults
    monkeypatch.delenv(STACKS_FILE_ENV)
    assert stack_defaults(path) == {"job_queue": "arn:queue/subscriber", "job_definition": "mxt-subscriber-worker",
                                    "manifests": "s3://work-subscriber/m/", "reports": "s3://work-subscriber/r/"}


def test_stack_defaults_fill_in_what_the_provider_list_leaves_out():
    defaults = {"job_queue": "arn:queue/subscriber", "job_definition": "mxt-subscriber-worker",
                "manifests": "s3://work-subscriber/m/", "reports": "s3://work-subscriber/r/"}
    config = parse_config(VALID, "test.yaml", defaults)  # VALID gives work but no job queue or definition
    assert (config.job_queue, config.job_definition) == ("arn:queue/subscriber", "mxt-subscriber-worker")
    assert (config.manifest_root, config.report_root) == ("s3://mx-work/manifests/", "s3://mx-work/reports/")
    config = parse_config(broken(lambda d: (d.pop("work"), d["transfer"].update(job_queue="mine", job_definition=None))),
                          "test.yaml", defaults)
    assert (config.job_queue, config.job_definition) == ("mine", "mxt-subscriber-worker")
    assert (config.manifest_root, config.report_root) == ("s3://work-subscriber/m/", "s3://work-subscriber/r/")
    with pytest.raises(ConfigError, match="missing field 'work'"):
        parse_config(broken(lambda d: d.pop("work")), "test.yaml", {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read the stacks file: Expecting property name"),
        ("[]", "not a stacks file of format mxtransfer-stacks/1"),
        (json.dumps({"format": "mxtransfer-stacks/0", "stacks": {}}), "not a stacks file of format"),
        (json.dumps({"format": "mxtransfer-stacks/1", "stacks": {"a": "b"}}), "not a stacks file of format"),
        (json.dumps({"format": "mxtransfer-stacks/1", "stacks": {}}), r"0 stacks match MXTRANSFER_STACK='' \(known: none\)"),
    ],
)
def test_a_malformed_stacks_file_is_named_with_the_cause(tmp_path, monkeypatch, content, message):
    monkeypatch.delenv(STACKS_FILE_ENV, raising=False)
    monkeypatch.delenv(STACK_ENV, raising=False)
    path = tmp_path / "mxtransfer_stacks.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"{path}: {message}"):
        stack_defaults(path)


def test_an_ambiguous_or_incomplete_stack_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(STACK_ENV, raising=False)
    monkeypatch.setenv(STACKS_FILE_ENV, str(_stacks_file(tmp_path, subscriber={}, publisher={"report_uri": None})))
    with pytest.raises(ConfigError, match=r"2 stacks match MXTRANSFER_STACK='' \(known: mxt-publisher \(publisher\), "
                                          r"mxt-subscriber \(subscriber\)\): set MXTRANSFER_STACK"):
        stack_defaults(tmp_path / "unused.json")
    monkeypatch.setenv(STACK_ENV, "publisher")
    with pytest.raises(ConfigError, match=r"stack mxt-publisher: missing report_uri \(write the file again"):
        stack_defaults(tmp_path / "unused.json")
    monkeypatch.setenv(STACK_ENV, "subscriber")
    (tmp_path / "mxtransfer_stacks.json").write_text(
        (tmp_path / "mxtransfer_stacks.json").read_text().replace('"s3://work-subscriber/m"', '"work/m"'))
    with pytest.raises(ConfigError, match="stack mxt-subscriber: manifest_uri: not an s3:// URI"):
        stack_defaults(tmp_path / "unused.json")
