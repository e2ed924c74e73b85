"""The provider list of the aggregation DAG: parsing and validation, without Airflow.

The list comes from a YAML (or JSON) document, a file such as ``dags/config/providers.yaml`` or the text of
an Airflow Variable::

    destination:
      bucket: mx-aggregate-media       # every provider copies into this bucket
      aws_conn_id: aws_default         # our account: runs the copies, writes the destination and reports
    work:
      manifests: s3://mx-transfer-work/manifests/
      reports: s3://mx-transfer-work/reports/
    transfer:                          # optional
      job_queue: mxtransfer-spot       # AWS Batch queue and job definition (compute "batch")
      job_definition: mxtransfer-worker
      copy_options: {storage_class: INTELLIGENT_TIERING}   # any CopyOptions field
      poll_interval: 60                # seconds between the wait task's checks of the fleet
    providers:
      - name: acme-studios
        source_bucket: acme-studios-masters
        source_prefix: deliveries/
        aws_conn_id: aws_acme          # the cross-account role that may list the source
        destination_prefix: providers/acme-studios/
        include: ["*.mov"]             # optional filters: include, exclude, min_size, max_size

Errors name the document, the entry and the cause: a missing or unknown field, a bad bucket name, two
providers with the same name, destination prefixes that overlap (one a prefix of another: their objects
would mix, and one provider's "identical at destination" check would see the other's objects), and, with
:func:`check_connections`, a connection id that Airflow does not know.

Each provider is reached through an Airflow AWS connection of its own whose extra names the cross-account role
that may list its bucket (``{"role_arn": "arn:aws:iam::<provider account>:role/<role>"}``); ``destination``'s
connection is our account's.

``work`` and ``transfer.job_queue``/``job_definition`` may be left out when the DAGs find the stacks file that
``make outputs`` writes from the deployed CloudFormation stacks (``dags/config/mxtransfer_stacks.json``, see
``infra/stack_outputs.py``): :func:`stack_defaults` reads it, and values given in the document win over it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from airflow_provider_mxtransfer.backends import BACKENDS
from mxtransfer_worker.manifest import is_bucket_name
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3uri import S3Uri

#: Where the DAGs read the compute backend from: this environment variable, else this Airflow Variable.
COMPUTE_ENV, COMPUTE_VARIABLE = "MXTRANSFER_COMPUTE", "mxtransfer_compute"
#: Environment variables naming the stacks file (else the DAG's default path) and the stack in it (name or side).
STACKS_FILE_ENV, STACK_ENV = "MXTRANSFER_STACKS_FILE", "MXTRANSFER_STACK"
#: Where the DAGs read the provider list from: this Airflow Variable's text, else the file this environment
#: variable names, else ``providers.yaml`` in the DAGs' config folder.
PROVIDERS_VARIABLE, PROVIDERS_FILE_ENV = "mxtransfer_providers", "MXTRANSFER_PROVIDERS_FILE"
#: The stacks file's format (written by ``infra/stack_outputs.py``).
STACKS_FORMAT = "mxtransfer-stacks/1"
#: Provider-document field <- stack output (snake_case, as in the stacks file); jobs are submitted to the job
#: definition's name, so they run its latest revision.
_STACK_FIELDS = {"job_queue": "job_queue_arn", "job_definition": "job_definition_name",
                 "manifests": "manifest_uri", "reports": "report_uri"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_PROVIDER_FIELDS = {"name", "source_bucket", "source_prefix", "aws_conn_id", "destination_prefix", "include",
                    "exclude", "min_size", "max_size"}
_REQUIRED_PROVIDER_FIELDS = ("name", "source_bucket", "aws_conn_id", "destination_prefix")
#: section -> (allowed fields, required fields)
_SECTIONS = {
    "destination": ({"bucket", "aws_conn_id"}, ("bucket",)),
    "work": ({"manifests", "reports"}, ("manifests", "reports")),
    "transfer": ({"job_queue", "job_definition", "copy_options", "poll_interval"}, ()),
}


class ConfigError(ValueError):
    """A provider list that cannot be used: names the document, the entry and the cause."""


@dataclass(frozen=True)
class ProviderConfig:
    """One provider: where its objects are, the connection that may list them, where they go."""

    name: str
    source_bucket: str
    aws_conn_id: str
    destination_prefix: str
    source_prefix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None

    @property
    def source_uri(self) -> str:
        return str(S3Uri(self.source_bucket, self.source_prefix))


@dataclass(frozen=True)
class AggregationConfig:
    """The whole document: the shared destination and work locations, transfer settings, the providers."""

    destination_bucket: str
    destination_conn_id: str
    manifest_root: str
    report_root: str
    providers: tuple[ProviderConfig, ...]
    job_queue: str | None = None
    job_definition: str | None = None
    copy_options: dict[str, Any] = field(default_factory=dict)
    poll_interval: float = 60


def load_config_file(path: str | Path, defaults: dict[str, str] | None = None) -> AggregationConfig:
    """Read and validate the provider list in the YAML file at ``path`` (``defaults`` as for :func:`parse_config`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the provider list: {error.strerror}") from None
    return parse_config_text(text, str(path), defaults)


def parse_config_text(text: str, source: str, defaults: dict[str, str] | None = None) -> AggregationConfig:
    """Validate the provider list in YAML (or JSON) ``text``; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return parse_config(data, source, defaults)


def parse_config(data: Any, source: str, defaults: dict[str, str] | None = None) -> AggregationConfig:
    """Validate an already parsed provider list (a mapping as documented in this module). ``defaults``
    (:func:`stack_defaults`) fill in the ``work`` and ``transfer`` fields the document leaves out or empty."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with destination, work and providers sections")
    data = dict(data)
    for name, (allowed, _) in _SECTIONS.items():
        given, fallback = data.get(name), {key: value for key, value in (defaults or {}).items() if key in allowed}
        if fallback and (given is None or isinstance(given, dict)):
            data[name] = {**fallback, **{key: value for key, value in (given or {}).items()
                                         if value not in (None, "")}}
    _check_fields(data, {*_SECTIONS, "providers"}, ("destination", "work", "providers"), source)
    sections = {}
    for name, (allowed, required) in _SECTIONS.items():
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {name} must be a mapping")
        _check_fields(section, allowed, required, f"{source}: {name}")
        sections[name] = section
    destination, work, transfer = sections["destination"], sections["work"], sections["transfer"]
    destination_bucket = _bucket(destination["bucket"], f"{source}: destination.bucket")
    manifest_root = _s3_prefix(work["manifests"], f"{source}: work.manifests")
    report_root = _s3_prefix(work["reports"], f"{source}: work.reports")
    copy_options = transfer.get("copy_options") or {}
    if not isinstance(copy_options, dict):
        raise ConfigError(f"{source}: transfer.copy_options must be a mapping of CopyOptions fields")
    for reserved in ("destination_bucket", "destination_prefix", "source_prefix"):
        if reserved in copy_options:
            raise ConfigError(f"{source}: transfer.copy_options: {reserved} is set per provider, not here")
    try:
        CopyOptions(destination_bucket=destination_bucket, **copy_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: transfer.copy_options: {error}") from None

    poll_interval = transfer.get("poll_interval", 60)
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
        raise ConfigError(f"{source}: transfer.poll_interval must be a positive number of seconds, got {poll_interval!r}")

    entries = data["providers"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: providers must be a non-empty list")
    providers = tuple(_provider(entry, f"{source}: providers[{index}]") for index, entry in enumerate(entries))
    _check_unique_names(providers, source)
    _check_disjoint_destinations(providers, destination_bucket, source)
    return AggregationConfig(
        destination_bucket=destination_bucket,
        destination_conn_id=str(destination.get("aws_conn_id") or "aws_default"),
        manifest_root=manifest_root,
        report_root=report_root,
        providers=providers,
        job_queue=transfer.get("job_queue"),
        job_definition=transfer.get("job_definition"),
        copy_options=dict(copy_options),
        poll_interval=poll_interval,
    )


def _provider(entry: Any, where: str) -> ProviderConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(_REQUIRED_PROVIDER_FIELDS)}")
    if isinstance(entry.get("name"), str):
        where = f"{where} ({entry['name']})"
    _check_fields(entry, _PROVIDER_FIELDS, _REQUIRED_PROVIDER_FIELDS, where)
    name = str(entry["name"])
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: name {name!r} must be 1-63 letters, digits, '-' or '_', starting with a letter or digit")
    destination_prefix = _text(entry["destination_prefix"], f"{where}: destination_prefix")
    if not destination_prefix or destination_prefix.startswith("/"):
        raise ConfigError(f"{where}: destination_prefix must be a non-empty key prefix not starting with '/', "
                          f"e.g. 'providers/{name}/'")
    sizes = {}
    for size_field in ("min_size", "max_size"):
        value = entry.get(size_field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{where}: {size_field} must be a whole number of bytes, got {value!r}")
        sizes[size_field] = value
    return ProviderConfig(
        name=name,
        source_bucket=_bucket(entry["source_bucket"], f"{where}: source_bucket"),
        aws_conn_id=_text(entry["aws_conn_id"], f"{where}: aws_conn_id"),
        destination_prefix=destination_prefix,
        source_prefix=_text(entry.get("source_prefix") or "", f"{where}: source_prefix"),
        include=_patterns(entry.get("include"), f"{where}: include"),
        exclude=_patterns(entry.get("exclude"), f"{where}: exclude"),
        **sizes,
    )


def _check_fields(mapping: dict, allowed: set[str], required: tuple[str, ...], where: str) -> None:
    missing = [name for name in required if mapping.get(name) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing field {', '.join(repr(name) for name in missing)}")
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(allowed))})")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


def _bucket(value: Any, where: str) -> str:
    name = _text(value, where)
    if not is_bucket_name(name):
        raise ConfigError(f"{where}: {name!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots "
                          "and hyphens, starting and ending with a letter or digit, not an IP address)")
    return name


def _s3_prefix(value: Any, where: str) -> str:
    text = _text(value, where)
    try:
        location = S3Uri.parse(text)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    _bucket(location.bucket, where)
    return str(location.join(""))


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(pattern, str) and pattern for pattern in value):
        raise ConfigError(f"{where}: expected a list of glob patterns, got {value!r}")
    return tuple(value)


def _check_unique_names(providers: tuple[ProviderConfig, ...], source: str) -> None:
    seen = set()
    for provider in providers:
        if provider.name in seen:
            raise ConfigError(f"{source}: two providers are named {provider.name!r}")
        seen.add(provider.name)


def _check_disjoint_destinations(providers: tuple[ProviderConfig, ...], bucket: str, source: str) -> None:
    ordered = sorted(providers, key=lambda provider: provider.destination_prefix)
    for first, second in zip(ordered, ordered[1:]):
        if second.destination_prefix.startswith(first.destination_prefix):
            raise ConfigError(
                f"{source}: destination prefixes overlap: {first.name!r} copies to s3://{bucket}/"
                f"{first.destination_prefix}, which contains {second.name!r}'s s3://{bucket}/"
                f"{second.destination_prefix}; give each provider its own prefix ending in '/'"
            )


def check_connections(config: AggregationConfig, source: str, exists: Callable[[str], bool]) -> None:
    """Fail naming every connection id of the provider list for which ``exists`` (Airflow's lookup) is false,
    with the entries that use it."""
    users: dict[str, list[str]] = {config.destination_conn_id: ["destination.aws_conn_id"]}
    for index, provider in enumerate(config.providers):
        users.setdefault(provider.aws_conn_id, []).append(f"providers[{index}] ({provider.name})")
    unknown = [f"{conn_id!r} (used by {', '.join(where)})" for conn_id, where in users.items() if not exists(conn_id)]
    if unknown:
        raise ConfigError(f"{source}: unknown Airflow connection {'; '.join(unknown)}: create an AWS connection with "
                          "that id (for a provider, one whose extra names the role that may list its bucket: "
                          '{"role_arn": "arn:aws:iam::<account>:role/<role>"})')


def stack_defaults(default_path: str | Path) -> dict[str, str]:
    """``job_queue``, ``job_definition``, ``manifests`` and ``reports`` of the deployed stack in the stacks file
    (``$MXTRANSFER_STACKS_FILE``, else ``default_path``): the stack named, or of the side, in
    ``$MXTRANSFER_STACK``, else the file's only one. Empty when there is no such file."""
    path = Path(os.environ.get(STACKS_FILE_ENV) or default_path)
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read the stacks file: {error}") from None
    stacks = document.get("stacks") if isinstance(document, dict) else None
    if not isinstance(stacks, dict) or document.get("format") != STACKS_FORMAT or not all(
            isinstance(entry, dict) for entry in stacks.values()):
        raise ConfigError(f"{path}: not a stacks file of format {STACKS_FORMAT} (write it with make outputs)")
    wanted = os.environ.get(STACK_ENV)
    names = [name for name, entry in stacks.items() if not wanted or wanted in (name, entry.get("side"))]
    if len(names) != 1:
        known = ", ".join(f"{name} ({entry.get('side')})" for name, entry in sorted(stacks.items())) or "none"
        raise ConfigError(f"{path}: {len(names)} stacks match {STACK_ENV}={wanted or ''!r} (known: {known}): "
                          f"set {STACK_ENV} to the name or side of one")
    entry, where = stacks[names[0]], f"{path}: stack {names[0]}"
    missing = [output for output in _STACK_FIELDS.values() if not entry.get(output) or not isinstance(entry[output], str)]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} (write the file again with make outputs)")
    values = {name: entry[output] for name, output in _STACK_FIELDS.items()}
    for name in ("manifests", "reports"):
        values[name] = _s3_prefix(values[name], f"{where}: {_STACK_FIELDS[name]}")
    return values


def load_dag_config(config_dir: str | Path, variable_text: str | None,
                    connection_exists: Callable[[str], bool] | None = None) -> AggregationConfig:
    """The DAGs' provider list: ``variable_text`` (the Variable ``PROVIDERS_VARIABLE``) if set, else the file
    ``$MXTRANSFER_PROVIDERS_FILE``, else ``config_dir/providers.yaml``; on top of the deployed stack's settings
    (``config_dir/mxtransfer_stacks.json``, see :func:`stack_defaults`). With ``connection_exists`` (Airflow's
    lookup), every connection it names must exist (:func:`check_connections`)."""
    config_dir = Path(config_dir)
    defaults = stack_defaults(config_dir / "mxtransfer_stacks.json")
    if variable_text:
        source = f"Airflow Variable {PROVIDERS_VARIABLE}"
        config = parse_config_text(variable_text, source, defaults)
    else:
        source = str(os.environ.get(PROVIDERS_FILE_ENV) or config_dir / "providers.yaml")
        config = load_config_file(source, defaults)
    if connection_exists:
        check_connections(config, source, connection_exists)
    return config


def choose_compute(variable: str | None, default: str = "batch") -> str:
    """The compute backend: the environment variable ``COMPUTE_ENV``, else the Airflow Variable's value
    ``variable`` (``COMPUTE_VARIABLE``), else ``default``."""
    choice = (os.environ.get(COMPUTE_ENV) or variable or default).strip()
    if choice not in BACKENDS:
        raise ConfigError(f"unknown compute backend {choice!r} (from {COMPUTE_ENV} or the Variable {COMPUTE_VARIABLE}): "
                          f"choose one of {', '.join(sorted(BACKENDS))}")
    return choice
