"""Every IAM policy in infra/templates: no "*" (or wildcard bucket/key) for s3:/kms: actions, no bare PassRole.

The checker (infra/policy_check.py) is tested first on small bad and good templates, so a clean result on the
real templates means it looked and found nothing, not that it looked nowhere.
"""

from __future__ import annotations

import copy

import pytest
from infra_testlib import TEMPLATES, TRANSFER_TEMPLATE

TEMPLATE_FILES = sorted(TEMPLATES.glob("*.yaml"))


def _role_template(statements, parameters=None):
    return {
        "Parameters": parameters or {},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]},
                    "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
                },
            }
        },
    }


def _findings(check, template):
    findings, checked = check.check_template(template, "t")
    assert checked > 0
    return [str(f) for f in findings]


BAD_STATEMENTS = {
    "star on s3": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    "star on kms": {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"]},
    "any bucket": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"},
    "any object": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::*/*"}},
    "bucket name wildcard": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::media-*/in/*"},
    "s3 star action": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    "star action": {"Effect": "Allow", "Action": "*", "Resource": "*"},
    "s3 wildcard action": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"},
    "kms any key": {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "arn:aws:kms:us-east-1:123456789012:key/*"},
    "kms any account": {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:*:key/abc"},
    "not resource": {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::private/*"},
    "not action": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    "passrole without resource": {"Effect": "Allow", "Action": "iam:PassRole"},
    "passrole star": {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
    "passrole any role": {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/*"},
    "passrole via iam star": {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
    "star in one if branch": {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": {"Fn::If": ["C", "arn:aws:s3:::b/p/*", "*"]},
    },
    "unscopable without condition": {"Effect": "Allow", "Action": "s3:CreateJob", "Resource": "*"},
    "unscopable mixed with scopable": {
        "Effect": "Allow",
        "Action": ["s3:CreateJob", "s3:GetObject"],
        "Resource": "*",
        "Condition": {"StringEquals": {"s3:RequestJobOperation": "LambdaInvoke"}},
    },
}


@pytest.mark.parametrize("case", sorted(BAD_STATEMENTS))
def test_checker_catches_bad_statement(policy_check_module, case):
    findings = _findings(policy_check_module, _role_template([BAD_STATEMENTS[case]]))
    assert findings, case


def test_checker_catches_wildcard_in_an_if_statement(policy_check_module):
    statement = {"Fn::If": ["C", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, {"Ref": "AWS::NoValue"}]}
    assert _findings(policy_check_module, _role_template([statement]))


@pytest.mark.parametrize("kind", ["AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::S3::BucketPolicy"])
def test_checker_reads_every_policy_resource_type(policy_check_module, kind):
    template = {
        "Resources": {
            "P": {
                "Type": kind,
                "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}},
            }
        }
    }
    assert _findings(policy_check_module, template)


def test_checker_probes_parameters(policy_check_module):
    """A parameter that would accept "*" (or an empty value next to arn:aws:s3:::) is as bad as a literal."""
    unconstrained = {"Bucket": {"Type": "String"}}
    statement = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Sub": "arn:aws:s3:::${Bucket}/in/*"}}
    found = _findings(policy_check_module, _role_template([statement], unconstrained))
    assert any("parameter Bucket accepts" in f for f in found), found

    keys = {"Keys": {"Type": "CommaDelimitedList", "Default": ""}}
    statement = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "Keys"}}
    assert _findings(policy_check_module, _role_template([statement], keys))

    # the Split/Join construction used for SourceLocations, with a pattern that lets an empty entry through
    locations = {"Locations": {"Type": "CommaDelimitedList", "AllowedPattern": "^[a-z0-9.-]*/?.*$"}}
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": {"Fn::Split": [",", {"Fn::Join": ["", ["arn:aws:s3:::", {"Fn::Join": ["*,arn:aws:s3:::", {"Ref": "Locations"}]}, "*"]]}]},
    }
    assert _findings(policy_check_module, _role_template([statement], locations))


def test_checker_passes_good_statements(policy_check_module):
    parameters = {
        "Bucket": {"Type": "String", "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
        "Keys": {"Type": "CommaDelimitedList", "Default": "", "AllowedPattern": "^$|^arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$"},
    }
    statements = [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/in/*"}},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": {"Fn::Sub": "arn:aws:s3:::${Bucket}"}},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "Keys"}},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": {"Fn::GetAtt": ["Role", "Arn"]}},
        {"Effect": "Allow", "Action": "batch:DescribeJobs", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "s3:CreateJob",
            "Resource": "*",
            "Condition": {"StringEquals": {"s3:RequestJobOperation": "LambdaInvoke"}},
        },
        {"Effect": "Allow", "Action": "s3:DescribeJob", "Resource": {"Fn::Sub": "arn:aws:s3:${AWS::Region}:${AWS::AccountId}:job/*"}},
    ]
    assert _findings_or_empty(policy_check_module, _role_template(statements, parameters)) == []


def _findings_or_empty(check, template):
    findings, _ = check.check_template(template, "t")
    return [str(f) for f in findings]


def test_unscopable_actions_come_from_aws_data(policy_check_module):
    unscopable = policy_check_module.unscopable_actions("s3")
    assert "s3:createjob" in unscopable
    assert "s3:getobject" not in unscopable and "s3:describejob" not in unscopable


@pytest.mark.parametrize("template", TEMPLATE_FILES, ids=lambda p: p.name)
def test_templates_have_no_wildcard_s3_kms_or_bare_passrole(policy_check_module, template):
    findings, _ = policy_check_module.check_file(str(template))
    assert not findings, "\n".join(str(f) for f in findings)


def test_transfer_stack_policies_are_all_read(policy_check_module):
    template = policy_check_module.load_template(str(TRANSFER_TEMPLATE))
    where = {w for w, _ in policy_check_module.policy_documents(template)}
    assert {
        "DataAccessPolicy",
        "SourceKmsPolicy",
        "DestinationKmsPolicy",
        "AssumeSourceRolesPolicy",
        "AirflowPolicy",
        "AirflowS3BatchOperationsPolicy",
        "S3BatchOperationsRole.Policies[invoke-driver-and-use-work-prefixes]",
        "DriverRole.Policies[logs-and-hand-off-to-batch]",
    } <= where
    _, checked = policy_check_module.check_template(template)
    assert checked >= 20


@pytest.mark.parametrize(
    "parameter",
    ["SourceLocations", "DestinationBucket", "SourceKmsKeyArns", "DestinationKmsKeyArns", "WorkBucket"],
)
def test_loosening_a_parameter_pattern_is_caught(policy_check_module, parameter):
    """The real template's safety rests on the parameter patterns: dropping one must fail the check.

    (Prefix parameters are not in the list: a wildcard prefix stays inside the named bucket, which the rules
    allow, as an empty DestinationPrefix means the whole destination bucket by design.)
    """
    template = copy.deepcopy(policy_check_module.load_template(str(TRANSFER_TEMPLATE)))
    del template["Parameters"][parameter]["AllowedPattern"]
    findings, _ = policy_check_module.check_template(template)
    assert any(f"parameter {parameter} accepts" in str(f) for f in findings), findings
