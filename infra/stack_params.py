"""Collect and check the parameters of a stack template before `aws cloudformation deploy` (used by infra.mk).

Where a value comes from, first match wins:

1. ``--set Key=Value`` (the Makefile fixes ``Side`` this way);
2. an environment variable named exactly like the parameter (``SourceLocations=a/x/ make install ...``);
3. the params file (``PARAMS_FILE=...``): ``Key=Value`` lines (``#`` comments) or a JSON object;
4. ``--default Key=Value`` (the Makefile offers the ECR image this way);
5. an answer at the prompt, for the parameters listed in ``ASK`` and every parameter without a default, when
   stdin is a terminal (an empty answer keeps the default shown);
6. the template's default.

Every value is checked against the template's AllowedPattern/AllowedValues/MinValue/MaxValue/MinLength before
anything is deployed, and must be free of whitespace and shell wildcards (the Makefile passes them as words).
The result is written as ``Key=Value`` lines for ``--parameter-overrides``. Only parameters the template knows are
accepted, so a typo in a params file fails here instead of being ignored.

``driver-zip`` builds a reproducible zip of ``worker/mxtransfer_worker`` and the wheels of its dependencies (the
worker image's pinned requirements, downloaded for the Lambda platform by infra.mk: the Lambda runtime has no
awscrt, and its boto3 is not the version the engine was tested with) for the S3 Batch Operations driver Lambda,
and prints its content-addressed key.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import textwrap
import zipfile
from collections.abc import Mapping
from typing import Any

import yaml

#: Parameters worth a question even though they have defaults (the rest keep theirs unless set).
ASK = (
    "Image",
    "SourceLocations",
    "SourceKmsKeyArns",
    "SourceRoleArns",
    "DestinationBucket",
    "DestinationPrefix",
    "DestinationKmsKeyArns",
    "WorkBucket",
    "MaxvCpus",
    "EnableOnDemandFallback",
    "SubnetIds",
    "SecurityGroupIds",
    "AirflowExecutionRoleName",
    "EnableS3BatchOperations",
    "DriverCodeBucket",
    "DriverCodeKey",
)
#: Asked only when the switch on the right is "true".
ASK_ONLY_IF = {"DriverCodeBucket": "EnableS3BatchOperations", "DriverCodeKey": "EnableS3BatchOperations"}

_UNSAFE = re.compile(r"[\s*?\[\]'\"`$\\;&|<>()]")


class ParameterError(ValueError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that accepts CloudFormation's short-form tags (!Ref, !Sub, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: str) -> dict:
    """A CloudFormation YAML (or JSON) template as plain data, short-form tags turned into long form."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def read_params_file(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ParameterError(f"{path}:{number}: expected Key=Value, got {line!r}")
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def check_value(name: str, spec: Mapping[str, Any], value: str) -> None:
    """Raise ParameterError unless ``value`` satisfies the parameter's constraints in the template."""
    if _UNSAFE.search(value):
        raise ParameterError(f"{name}: whitespace, quotes and shell wildcards are not allowed: {value!r}")
    kind = spec.get("Type", "String")
    items = value.split(",") if kind == "CommaDelimitedList" else [value]
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_as_text(a) for a in allowed]:
        raise ParameterError(f"{name}: {value!r} is not one of {', '.join(_as_text(a) for a in allowed)}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None:
        for item in items:
            if kind == "CommaDelimitedList" and item == "" and len(items) == 1 and spec.get("Default") == "":
                continue
            if not re.fullmatch(pattern, item):
                why = spec.get("ConstraintDescription", f"must match {pattern}")
                raise ParameterError(f"{name}: {item!r}: {why}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise ParameterError(f"{name}: needs at least {spec['MinLength']} characters")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"{name}: {value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise ParameterError(f"{name}: {value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise ParameterError(f"{name}: {value} is above {spec['MaxValue']}")


def _prompt(name: str, spec: Mapping[str, Any], default: str | None, ask, say) -> str:
    description = " ".join(str(spec.get("Description", "")).split())
    say("")
    say(textwrap.fill(f"{name}: {description}", width=110, subsequent_indent="    "))
    while True:
        shown = f" [{default}]" if default not in (None, "") else (" [empty]" if default == "" else "")
        answer = ask(f"  {name}{shown}: ").strip()
        value = answer if answer else default
        if value is None:
            say("  a value is required")
            continue
        try:
            check_value(name, spec, value)
        except ParameterError as err:
            say(f"  {err}")
            continue
        return value


def resolve(
    template: Mapping[str, Any],
    *,
    fixed: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    params_file: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    interactive: bool = False,
    ask=input,
    say=print,
) -> dict[str, str]:
    """Resolve every parameter of ``template`` (see the module docstring for the order) and check it."""
    specs = template.get("Parameters", {})
    fixed, environ, params_file, defaults = fixed or {}, environ or {}, params_file or {}, defaults or {}
    for source, values in (("--set", fixed), ("params file", params_file), ("--default", defaults)):
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ParameterError(f"{source}: unknown parameters {', '.join(unknown)} (known: {', '.join(specs)})")
    resolved: dict[str, str] = {}
    for name, spec in specs.items():
        template_default = _as_text(spec["Default"]) if "Default" in spec else None
        for values in (fixed, environ, params_file):
            if name in values:
                value = values[name]
                break
        else:
            default = defaults.get(name, template_default)
            switch = ASK_ONLY_IF.get(name)
            wanted = name in ASK or default is None
            if switch is not None and resolved.get(switch) != "true":
                wanted = False
            if interactive and wanted:
                value = _prompt(name, spec, default, ask, say)
            elif default is None:
                raise ParameterError(f"{name} is required: set it in the environment or the params file")
            else:
                value = default
        check_value(name, spec, value)
        resolved[name] = value
    return resolved


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed timestamps: the same zip every time
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def driver_zip(package_dir: str, out_dir: str, wheels: list[str] = ()) -> tuple[str, str]:
    """Zip ``package_dir`` and the contents of ``wheels`` (unpacked at the root, as pip would install them)
    reproducibly (sorted, fixed timestamps); returns (path, content-addressed key)."""
    entries: dict[str, bytes] = {}
    for wheel in sorted(wheels):
        with zipfile.ZipFile(wheel) as unpacked:
            for name in unpacked.namelist():
                if not name.endswith("/"):
                    entries[name] = unpacked.read(name)
    root = os.path.dirname(os.path.abspath(package_dir))
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for filename in files:
            if not filename.endswith((".pyc", ".pyo")):
                path = os.path.join(folder, filename)
                with open(path, "rb") as handle:
                    entries[os.path.relpath(path, root)] = handle.read()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            _zip_entry(archive, name, entries[name])
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"driver-{digest}.zip")
    with open(path, "wb") as handle:
        handle.write(data)
    return path, f"mxtransfer/driver/driver-{digest}.zip"


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"expected Key=Value, got {item!r}")
        key, value = item.split("=", 1)
        pairs[key] = value
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve stack parameters for `aws cloudformation deploy`.")
    sub = parser.add_subparsers(dest="command", required=True)
    params = sub.add_parser("params", help="resolve and check a template's parameters")
    params.add_argument("--template", required=True)
    params.add_argument("--out", required=True, help="file to write Key=Value lines to")
    params.add_argument("--params-file", default="", help="Key=Value lines or a JSON object")
    params.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed value")
    params.add_argument("--default", action="append", default=[], metavar="KEY=VALUE", help="suggested value")
    params.add_argument("--no-input", action="store_true", help="never prompt, even on a terminal")
    zipper = sub.add_parser("driver-zip", help="zip the driver Lambda package reproducibly")
    zipper.add_argument("--package", default=os.path.join("worker", "mxtransfer_worker"))
    zipper.add_argument("--out-dir", default=os.path.join("build", "infra"))
    zipper.add_argument("--wheel", action="append", default=[], help="a dependency's wheel to unpack into the zip")
    args = parser.parse_args(argv)
    try:
        if args.command == "driver-zip":
            path, key = driver_zip(args.package, args.out_dir, args.wheel)
            print(f"{path} {key}")
            return 0
        template = load_template(args.template)
        resolved = resolve(
            template,
            fixed=_pairs(args.set),
            environ=os.environ,
            params_file=read_params_file(args.params_file) if args.params_file else None,
            defaults={k: v for k, v in _pairs(args.default).items() if v},
            interactive=sys.stdin.isatty() and not args.no_input,
            say=lambda text: print(text, file=sys.stderr),
        )
    except (ParameterError, OSError) as err:
        print(f"stack_params: {err}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        for name, value in resolved.items():
            handle.write(f"{name}={value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
