"""Check every IAM policy document in CloudFormation templates for over-broad S3/KMS resources and bare PassRole.

Rules, for each ``Allow`` statement:

* an action that grants ``s3:`` or ``kms:`` (including ``s3:*``, ``*``) must not apply to ``"*"``, to a wildcard
  bucket (``arn:aws:s3:::*``, ``arn:aws:s3:::media-*/x``), to a wildcard KMS key (``key/*``) or region/account,
  nor through ``NotResource``;
* ``iam:PassRole`` (also via ``iam:*``/``*``) must name its roles: no missing ``Resource``, no ``NotResource``, no
  wildcard in the role ARN;
* ``NotAction`` on ``Allow`` is refused (it grants everything else, S3 and KMS included).

The only ``"*"`` accepted for an S3/KMS action is for actions that IAM cannot scope at all (they have no resource
type, e.g. ``s3:CreateJob``; the list comes from AWS's service authorization data shipped with cfn-lint), and
only in a statement that holds nothing else and carries a ``Condition``.

Resources are evaluated symbolically: ``Fn::If`` yields both branches, ``Fn::Join``/``Fn::Split``/``Fn::Sub``/
``Fn::Select`` are computed, ``Ref``/``Fn::GetAtt`` of resources and pseudo parameters stand for concrete values,
and a ``Ref`` to a template parameter is tried with every probe value (``""``, ``"*"``, ``"a*"``, wildcard ARNs, ...)
that the parameter's ``AllowedPattern``/``AllowedValues`` accepts: a parameter that lets a caller pass ``*`` fails
the check just like a literal ``*``.

Usage: ``python infra/policy_check.py infra/templates/*.yaml`` (exit status 1 and one line per finding).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

try:  # the same loader infra/stack_params.py uses (short-form tags)
    from stack_params import load_template
except ImportError:  # imported as infra.policy_check or from a test by path
    import importlib.util
    import os

    _spec = importlib.util.spec_from_file_location(
        "_mxtransfer_stack_params", os.path.join(os.path.dirname(os.path.abspath(__file__)), "stack_params.py")
    )
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    load_template = _module.load_template

#: Values tried for every template parameter that feeds a resource (only those its constraints accept).
PROBES = (
    "",
    "*",
    "?",
    "a*",
    "*a",
    "*/",
    "a/*",
    "a*/",
    "arn:aws:s3:::*",
    "arn:aws:kms:us-east-1:123456789012:key/*",
    "arn:aws:kms:*:*:key/*",
    "arn:aws:iam::123456789012:role/*",
    "arn:aws:iam::*:role/*",
)
#: Harmless sample values; the first one a parameter accepts stands in when another parameter is probed.
SAMPLES = (
    "sample-bucket",
    "sample-bucket/",
    "sample-bucket/prefix/",
    "prefix/",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:iam::123456789012:role/sample-role",
    "sample",
    "1",
)
POLICY_PROPERTIES = {
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
}
INLINE_POLICY_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
_MARK = "\x00"


@dataclass(frozen=True)
class Finding:
    template: str
    resource: str
    statement: str
    message: str

    def __str__(self) -> str:
        return f"{self.template}: {self.resource} [{self.statement}]: {self.message}"


@lru_cache(maxsize=1)
def _iam_actions() -> dict[str, dict]:
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    return load_resource(AdditionalSpecs, filename="Policies.json")


def unscopable_actions(service: str) -> frozenset[str]:
    """Lower-case actions of ``service`` that support no resource type (IAM grants them on ``*`` only)."""
    actions = _iam_actions().get(service, {}).get("Actions", {})
    return frozenset(f"{service}:{name}" for name, spec in actions.items() if not spec.get("Resources"))


def _known_actions(service: str) -> list[str]:
    return [f"{service}:{name}" for name in _iam_actions().get(service, {}).get("Actions", {})]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Renderer:
    """Symbolic evaluation of intrinsic functions into candidate strings with parameter markers."""

    def __init__(self, template: Mapping[str, Any]):
        self.parameters = template.get("Parameters", {}) or {}
        self.resources = template.get("Resources", {}) or {}

    def _ref(self, name: str) -> str:
        if name in self.parameters:
            return f"{_MARK}{name}{_MARK}"
        if name == "AWS::Partition":
            return "aws"
        if name == "AWS::Region":
            return "us-east-1"
        if name == "AWS::AccountId":
            return "123456789012"
        if name.startswith("AWS::"):
            return "pseudo"
        # a resource: a concrete physical id/ARN, never a wildcard
        return f"arn:aws:resource:us-east-1:123456789012:{name}"

    def strings(self, value: Any) -> list[str]:
        """All strings ``value`` may evaluate to (lists are flattened: each element is one candidate)."""
        out: list[str] = []
        for candidate in self.values(value):
            if isinstance(candidate, list):
                for item in candidate:
                    out.extend(self.strings(item))
            else:
                out.append(str(candidate))
        return out

    def values(self, value: Any) -> list[Any]:
        """Candidate values of ``value``: strings or lists of strings (one candidate per ``Fn::If`` branch)."""
        if isinstance(value, str):
            return [value]
        if isinstance(value, (int, float, bool)):
            return [str(value)]
        if isinstance(value, list):
            combos: list[list] = [[]]
            for item in value:
                options = self.values(item)
                combos = [c + [o] for c in combos for o in options]
            flat = []
            for combo in combos:
                items: list = []
                for o in combo:
                    if o is None:
                        continue
                    items.extend(o if isinstance(o, list) else [o])
                flat.append(items)
            return flat
        if not isinstance(value, dict) or len(value) != 1:
            return [json.dumps(value, sort_keys=True)]
        (key, arg), = value.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return [None]
            ref = self._ref(arg)
            spec = self.parameters.get(arg, {})
            if spec.get("Type", "").startswith(("CommaDelimitedList", "List<")):
                return [[ref]]
            return [ref]
        if key == "Fn::GetAtt":
            name = arg[0] if isinstance(arg, list) else str(arg).split(".")[0]
            return [f"arn:aws:resource:us-east-1:123456789012:{name}"]
        if key == "Fn::If":
            return self.values(arg[1]) + self.values(arg[2])
        if key == "Fn::Join":
            delimiter, items = arg
            out = []
            for candidate in self.values(items):
                out.append(delimiter.join(str(i) for i in _as_list(candidate)))
            return out
        if key == "Fn::Split":
            delimiter, source = arg
            return [[part for s in self.strings(source) for part in s.split(delimiter)]]
        if key == "Fn::Select":
            index, source = arg
            out = []
            for candidate in self.values(source):
                items = _as_list(candidate)
                out.append(items[int(index)] if int(index) < len(items) else "")
            return out
        if key == "Fn::Sub":
            text, mapping = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            candidates = [text]
            for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                if name in mapping:
                    options = self.strings(mapping[name])
                elif "." in name:
                    options = [f"arn:aws:resource:us-east-1:123456789012:{name.split('.')[0]}"]
                else:
                    options = [self._ref(name)]
                candidates = [c.replace("${" + name + "}", o) for c in candidates for o in options]
            return candidates
        if key in ("Fn::ImportValue", "Fn::FindInMap", "Fn::Base64", "Fn::GetAZs", "Fn::Cidr"):
            return [f"{_MARK}{key}{_MARK}"]
        return [json.dumps(value, sort_keys=True)]

    # -- parameters

    def accepts(self, name: str, value: str) -> bool:
        spec = self.parameters.get(name)
        if spec is None:  # Fn::ImportValue and friends: unknown, so anything
            return True
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            return False
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            return False
        return True

    def sample(self, name: str) -> str:
        spec = self.parameters.get(name, {})
        for value in list(SAMPLES) + [str(v) for v in spec.get("AllowedValues", [])]:
            if self.accepts(name, value):
                return value
        return "x"

    def instantiate(self, text: str) -> Iterator[tuple[str, str]]:
        """Concrete strings for a marked string: (value, how) for every probe a parameter accepts."""
        names = re.findall(f"{_MARK}([^{_MARK}]+){_MARK}", text)
        if not names:
            yield text, ""
            return
        samples = {n: self.sample(n) for n in names}
        plain = text
        for n in names:
            plain = plain.replace(f"{_MARK}{n}{_MARK}", samples[n])
        yield plain, ""
        for probed in dict.fromkeys(names):
            for probe in PROBES:
                if not self.accepts(probed, probe):
                    continue
                concrete = text
                for n in names:
                    concrete = concrete.replace(f"{_MARK}{n}{_MARK}", probe if n == probed else samples[n])
                yield concrete, f" (parameter {probed} accepts {probe!r})"


def _wild(text: str) -> bool:
    return "*" in text or "?" in text


def resource_problem(arn: str, service: str) -> str | None:
    """Why ``arn`` is too broad for a ``service`` (s3/kms/passrole) action, or None."""
    stripped = arn.strip()
    if stripped == "":
        # an empty element (an optional list parameter left empty) names nothing; IAM rejects it at deploy time
        return "iam:PassRole on an empty resource" if service == "passrole" else None
    if set(stripped) <= {"*", "?"}:
        return f"resource {arn!r} is a wildcard"
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return f"resource {arn!r} is not an ARN" if service == "passrole" else None
    _, partition, arn_service, region, account, rest = parts
    if service == "passrole":
        return f"role {arn!r} contains a wildcard" if _wild(arn) else None
    if arn_service != service:
        return None  # e.g. a batch ARN in a statement that also lists an s3 action: not an S3 grant
    if _wild(partition):
        return f"resource {arn!r} has a wildcard partition"
    if service == "s3":
        if region == "" and account == "":
            bucket = rest.split("/", 1)[0]
            if bucket == "" or _wild(bucket):
                return f"resource {arn!r} matches any bucket"
            return None
        if _wild(region) or _wild(account) or rest == "" or _wild(rest.split("/", 1)[0]):
            return f"resource {arn!r} has a wildcard region, account or resource type"
        return None
    if service == "kms":
        if _wild(region) or _wild(account) or _wild(rest):
            return f"resource {arn!r} matches more than named keys"
        return None
    return None


def _actions_matching(action_patterns: list[str], service: str) -> list[str]:
    """Actions of ``service`` the patterns grant (lower-case); patterns are IAM globs."""
    out = []
    for pattern in action_patterns:
        p = pattern.lower()
        if p == "*" or p.startswith(f"{service}:"):
            out.extend(a for a in _known_actions(service) if fnmatch.fnmatchcase(a, p))
            if not any(fnmatch.fnmatchcase(a, p) for a in _known_actions(service)):
                out.append(p)  # unknown to the data: keep it as written
    return sorted(set(out))


def check_statement(statement: Mapping[str, Any], renderer: _Renderer) -> list[str]:
    """Problems with one policy statement (empty if fine)."""
    if statement.get("Effect") != "Allow":
        return []
    problems = []
    if "NotAction" in statement:
        return ["Allow with NotAction grants every other action, S3 and KMS included"]
    actions = [a for a in renderer.strings(statement.get("Action")) if isinstance(a, str)]
    s3_kms = {service: _actions_matching(actions, service) for service in ("s3", "kms")}
    passrole = _actions_matching(actions, "iam")
    passrole = [a for a in passrole if a == "iam:passrole"]
    has_resource = "Resource" in statement
    resources = renderer.strings(statement.get("Resource")) if has_resource else []
    condition = bool(statement.get("Condition"))

    for service, granted in s3_kms.items():
        if not granted:
            continue
        if "NotResource" in statement:
            problems.append(f"{service} actions with NotResource apply to every other {service} resource")
            continue
        unscopable = unscopable_actions(service)
        only_unscopable = all(a in unscopable for a in granted) and not passrole and not any(
            s3_kms[other] for other in s3_kms if other != service
        )
        for marked in resources:
            for concrete, how in renderer.instantiate(marked):
                problem = resource_problem(concrete, service)
                if problem is None:
                    continue
                if concrete.strip() == "*" and not how and only_unscopable and condition:
                    continue  # e.g. s3:CreateJob: IAM offers nothing narrower than "*" (and a condition)
                problems.append(f"{', '.join(granted)}: {problem}{how}")
    if passrole:
        if "NotResource" in statement:
            problems.append("iam:PassRole with NotResource")
        elif not has_resource or not resources:
            problems.append("iam:PassRole without a Resource")
        for marked in resources:
            for concrete, how in renderer.instantiate(marked):
                problem = resource_problem(concrete, "passrole")
                if problem is not None:
                    problems.append(f"iam:PassRole: {problem}{how}")
    return sorted(set(problems))


def policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, document) for every IAM permission policy in the template (trust policies excluded)."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        for prop in POLICY_PROPERTIES.get(kind, ()):
            if prop in properties:
                yield logical_id, properties[prop]
        if kind in INLINE_POLICY_TYPES:
            for index, policy in enumerate(properties.get("Policies") or []):
                name = policy.get("PolicyName", index) if isinstance(policy, dict) else index
                yield f"{logical_id}.Policies[{name}]", policy.get("PolicyDocument")


def _statements(document: Any) -> Iterator[Mapping[str, Any]]:
    """Statements of a policy document, both branches of any ``Fn::If`` (``AWS::NoValue`` dropped)."""

    def branches(value: Any) -> Iterator[Any]:
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            for branch in value["Fn::If"][1:]:
                yield from branches(branch)
        elif value != {"Ref": "AWS::NoValue"}:
            yield value

    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return
    for doc in branches(document):
        if not isinstance(doc, dict):
            continue
        for statements in branches(doc.get("Statement", [])):
            for item in _as_list(statements):
                for statement in branches(item):
                    if isinstance(statement, dict):
                        yield statement


def check_template(template: Mapping[str, Any], name: str = "template") -> tuple[list[Finding], int]:
    """(findings, number of statements checked) for a parsed template."""
    renderer = _Renderer(template)
    findings, checked = [], 0
    for where, document in policy_documents(template):
        for index, statement in enumerate(_statements(document)):
            checked += 1
            label = str(statement.get("Sid", index))
            for problem in check_statement(statement, renderer):
                findings.append(Finding(name, where, label, problem))
    return findings, checked


def check_file(path: str) -> tuple[list[Finding], int]:
    return check_template(load_template(path), path)


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    failed = False
    for path in paths:
        findings, checked = check_file(path)
        for finding in findings:
            print(finding)
        print(f"{path}: {checked} policy statements checked, {len(findings)} findings", file=sys.stderr)
        failed = failed or bool(findings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
