"""The aggregation DAG's provider list: the example file is valid; mistakes give errors naming entry and cause."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from airflow_provider_mxtransfer.config import ConfigError, choose_compute, load_config_file, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "config" / "providers.yaml"
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
    assert config.destination_bucket == "mx-aggregate-media" and config.job_queue == "mxtransfer-spot"
    assert config.providers[0].source_uri == "s3://acme-studios-masters/deliveries/"


def test_a_valid_document():
    config = parse_config(VALID, "test.yaml")
    acme, globex = config.providers
    assert (acme.include, acme.min_size, acme.source_prefix) == (("*.mov",), 1, "out/")
    assert (globex.source_prefix, globex.include, globex.source_uri) == ("", (), "s3://globex-media/")
    assert (config.manifest_root, config.report_root) == ("s3://mx-work/manifests/", "s3://mx-work/reports/")
    assert config.destination_conn_id == "aws_main" and config.copy_options == {"storage_class": "STANDARD_IA"}


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
        (lambda d: d["transfer"].update(copy_options={"part_size": 1}), "transfer.copy_options: part_size must be"),
        (lambda d: d["transfer"].update(copy_options={"source_prefix": "a/"}), "source_prefix is set per provider"),
        (lambda d: d["transfer"].update(copy_options={"colour": "red"}), "transfer.copy_options: .*colour"),
    ],
)
def test_mistakes_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(broken(change), "test.yaml")


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
