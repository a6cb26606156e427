"""Parsing IAM policy documents: the shapes AWS accepts, and AWS's sentence (and where) for the others."""

from __future__ import annotations

import json

import pytest

from sagelab.errors import SagelabError
from sagelab.security.policy_document import (
    Effect,
    MalformedPolicyDocument,
    PolicyKind,
    parse_policy,
)

ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def policy(*statements: dict, version: str | None = "2012-10-17", **top: object) -> str:
    body: dict = {"Statement": list(statements)} if len(statements) != 1 else {"Statement": statements[0]}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps({**body, **top})


def test_one_statement_object_and_single_strings_are_accepted():
    doc = parse_policy(policy({"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject",
                               "Resource": "arn:aws:s3:::bucket/*"}))
    assert doc.version == "2012-10-17"
    (statement,) = doc.statements
    assert statement.sid == "One" and statement.effect is Effect.ALLOW
    assert statement.actions.patterns == ("s3:GetObject",) and not statement.actions.negated
    assert statement.resources is not None and statement.resources.patterns == ("arn:aws:s3:::bucket/*",)
    assert statement.principals is None and statement.conditions == ()


def test_lists_not_elements_and_condition_value_shapes_are_accepted():
    doc = parse_policy(policy(
        {"Effect": "Deny", "NotAction": ["iam:*", "sts:*"],
         "NotResource": ["arn:aws:s3:::a", "arn:aws:s3:::b"],
         "Condition": {"NumericLessThan": {"s3:max-keys": 10}, "Bool": {"aws:SecureTransport": False},
                       "StringEquals": {"aws:username": ["alice", "bob"]},
                       "ForAllValues:StringLike": {"sagemaker:InstanceTypes": "ml.m5.*"}}},
        ALLOW_ALL))
    first = doc.statements[0]
    assert first.actions.negated and first.resources is not None and first.resources.negated
    assert [c.operator.name for c in first.conditions] == [
        "NumericLessThan", "Bool", "StringEquals", "ForAllValues:StringLike"]
    assert [v.template.text for v in first.conditions[0].values] == ["10"]
    assert [v.template.text for v in first.conditions[1].values] == ["false"]
    assert [v.template.text for v in first.conditions[2].values] == ["alice", "bob"]


def test_version_defaults_to_2008_and_then_variables_are_plain_text():
    doc = parse_policy(policy(ALLOW_ALL, version=None))
    assert doc.version == "2008-10-17"


def test_resource_policy_principal_shapes():
    doc = parse_policy(policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:user/alice"]},
         "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:role/admin"}, "Action": "s3:*",
         "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::b/*"},
    ), PolicyKind.RESOURCE)
    everyone, listed, negated, aws_star = (s.principals for s in doc.statements)
    assert everyone is not None and everyone.everyone
    assert listed is not None and listed.aws == {"arn:aws:iam::123456789012:root",
                                                 "arn:aws:iam::123456789012:user/alice"}
    assert negated is not None and negated.negated and negated.aws == {"arn:aws:iam::123456789012:role/admin"}
    assert aws_star is not None and aws_star.everyone


def test_trust_policy_has_a_service_principal_and_no_resource():
    doc = parse_policy(policy({"Effect": "Allow", "Principal": {"Service": "SageMaker.amazonaws.com"},
                               "Action": "sts:AssumeRole"}), PolicyKind.TRUST)
    (statement,) = doc.statements
    assert statement.resources is None
    assert statement.principals is not None and statement.principals.services == {"sagemaker.amazonaws.com"}


def test_the_error_carries_aws_code_status_and_s3_spelling():
    with pytest.raises(MalformedPolicyDocument) as caught:
        parse_policy("{")
    error = caught.value
    assert isinstance(error, SagelabError)
    assert (error.code, error.status) == ("MalformedPolicyDocument", 400)
    assert error.code_for("s3") == "MalformedPolicy"
    assert error.aws_message == "Syntax errors in policy."


S = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing:"
AWS_PRINCIPAL = ('expected "*", a 12-digit account id or the ARN of an account, user, role or session, '
                 "without wildcards.")


def bad(name: str, text: str, message: str, kind: PolicyKind = PolicyKind.IDENTITY):
    return pytest.param(text, kind, message, id=name)


def with_condition(condition: dict) -> str:
    return policy({**ALLOW_ALL, "Condition": condition})


def one(**statement: object) -> str:
    return policy(statement)


MALFORMED = [
    bad("not JSON", "{",
        f"{S} The policy is not valid JSON (Expecting property name enclosed in double quotes at line 1 "
        "column 2)."),
    bad("a list", "[]", f"{S} The policy must be a JSON object, got a list."),
    bad("duplicate key", '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        f"{S} The element 'Version' appears twice in one object."),
    bad("unknown top element", policy(ALLOW_ALL, Statements=[]),
        f"{S} Unknown element 'Statements' at the top level; a policy has Version, Id and Statement."),
    bad("bad version", policy(ALLOW_ALL, version="2020-01-01"),
        f"{S} Version must be '2012-10-17' or '2008-10-17', got '2020-01-01'."),
    bad("no statement", json.dumps({"Version": "2012-10-17"}), f"{S} The policy has no Statement."),
    bad("empty statement list", json.dumps({"Version": "2012-10-17", "Statement": []}),
        f"{S} Statement is an empty list."),
    bad("statement not an object", policy("Allow", ALLOW_ALL),
        f"{S} Statement[0] must be an object, got a string."),
    bad("missing effect", one(Action="*", Resource="*"),
        f'{S} Statement[0] has no Effect; expected "Allow" or "Deny".'),
    bad("unknown effect", one(Effect="Permit", Action="*", Resource="*"),
        f"{S} Statement[0].Effect must be \"Allow\" or \"Deny\", got 'Permit'."),
    bad("lower-case effect", one(Effect="allow", Action="*", Resource="*"),
        f"{LEGACY} Statement[0].Effect must be \"Allow\" or \"Deny\", got 'allow'."),
    bad("Action and NotAction", policy({**ALLOW_ALL, "NotAction": "s3:*"}),
        f"{S} Statement[0] has both Action and NotAction; use one."),
    bad("Resource and NotResource", policy({**ALLOW_ALL, "NotResource": "*"}),
        f"{S} Statement[0] has both Resource and NotResource; use one."),
    bad("unknown statement element", policy({**ALLOW_ALL, "Actions": "*"}),
        f"{S} Statement[0] has an unknown element 'Actions'; a statement has Sid, Effect, Principal, "
        "NotPrincipal, Action, NotAction, Resource, NotResource, Condition."),
    bad("no action", one(Effect="Allow", Resource="*"),
        "Policy statement must contain actions. Statement[0] has neither Action nor NotAction."),
    bad("empty action list", one(Effect="Allow", Action=[], Resource="*"),
        "Policy statement must contain actions. Statement[0].Action is an empty list."),
    bad("action not a string", one(Effect="Allow", Action=3, Resource="*"),
        f"{S} Statement[0].Action must be a string or a list of strings, got a number."),
    bad("action without vendor", one(Effect="Allow", Action="GetObject", Resource="*"),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Statement[0].Action "
        "'GetObject' has no service prefix."),
    bad("action with two colons", one(Effect="Allow", Action="s3:Get:Object", Resource="*"),
        "Actions/Condition can contain only one colon. Statement[0].Action is 's3:Get:Object'."),
    bad("bad vendor", one(Effect="Allow", Action="s3!:GetObject", Resource="*"),
        "Vendor s3! is not valid: Statement[0].Action 's3!:GetObject': a service prefix is letters, digits, "
        "'-' and '.', without wildcards."),
    bad("no resource", one(Effect="Allow", Action="*"),
        "Policy statement must contain resources. Statement[0] has neither Resource nor NotResource."),
    bad("resource not an ARN", one(Effect="Allow", Action="*", Resource="bucket"),
        'Resource bucket must be in ARN format or "*". Statement[0].Resource: expected '
        "arn:partition:service:region:account:resource."),
    bad("wildcard service", one(Effect="Allow", Action="*", Resource="arn:aws:s*:::b"),
        "Resource vendor must be fully qualified and cannot contain regexes. Statement[0].Resource "
        "'arn:aws:s*:::b' names no exact service."),
    bad("bad partition", one(Effect="Allow", Action="*", Resource="arn:foo:s3:::b"),
        'Partition "foo" is not valid for resource "arn:foo:s3:::b". Statement[0].Resource: partitions are '
        "aws, aws-cn, aws-us-gov, ..."),
    bad("unknown condition operator", with_condition({"StringEqualz": {"aws:username": "a"}}),
        f"{S} Statement[0].Condition has an unknown condition operator 'StringEqualz'."),
    bad("Null cannot take IfExists", with_condition({"NullIfExists": {"aws:username": "true"}}),
        f"{S} Statement[0].Condition has an unknown condition operator 'NullIfExists'."),
    bad("condition body not an object", with_condition({"StringEquals": "a"}),
        f"{S} Statement[0].Condition.StringEquals must be an object of condition keys, got a string."),
    bad("condition value null", with_condition({"StringEquals": {"aws:username": None}}),
        f"{S} Statement[0].Condition.StringEquals['aws:username'] must be a string, number or boolean, or a "
        "non-empty list of them, got null."),
    bad("bad date", with_condition({"DateLessThan": {"aws:CurrentTime": "yesterday"}}),
        f"{LEGACY} Statement[0].Condition.DateLessThan['aws:CurrentTime']: 'yesterday' is not an ISO 8601 "
        "date or a number of epoch seconds."),
    bad("bad number", with_condition({"NumericLessThan": {"s3:max-keys": "ten"}}),
        f"{LEGACY} Statement[0].Condition.NumericLessThan['s3:max-keys']: 'ten' is not a number."),
    bad("bad CIDR", with_condition({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
        f"{LEGACY} Statement[0].Condition.IpAddress['aws:SourceIp']: '10.0.0.0/33' is not an IP address or "
        "CIDR range."),
    bad("bad bool", with_condition({"Bool": {"aws:SecureTransport": "yes"}}),
        f"{LEGACY} Statement[0].Condition.Bool['aws:SecureTransport']: 'yes' is not \"true\" or \"false\"."),
    bad("duplicate sid", policy({**ALLOW_ALL, "Sid": "A"}, {**ALLOW_ALL, "Sid": "A"}),
        "Statement IDs (SID) in a single policy must be unique. Statement[1].Sid 'A' is already used."),
    bad("sid with a dash", policy({**ALLOW_ALL, "Sid": "read-only"}),
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression "
        "[0-9A-Za-z]*: Statement[0].Sid is 'read-only'."),
    bad("principal in an identity policy", policy({**ALLOW_ALL, "Principal": "*"}),
        "Policy document should not specify a principal. Statement[0] has Principal; an identity policy "
        "applies to the identity it is attached to."),
    bad("no principal in a bucket policy", policy(ALLOW_ALL),
        "Missing required field Principal: Statement[0] has neither Principal nor NotPrincipal.",
        PolicyKind.RESOURCE),
    bad("Principal and NotPrincipal", policy({**ALLOW_ALL, "Principal": "*", "NotPrincipal": "*"}),
        f"{S} Statement[0] has both Principal and NotPrincipal; use one.", PolicyKind.RESOURCE),
    bad("invalid AWS principal", policy({**ALLOW_ALL, "Principal": {"AWS": "bob"}}),
        f'Invalid principal in policy: "AWS":"bob": Statement[0].Principal: {AWS_PRINCIPAL}',
        PolicyKind.RESOURCE),
    bad("partial wildcard principal",
        policy({**ALLOW_ALL, "Principal": {"AWS": "arn:aws:iam::123456789012:user/*"}}),
        'Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*": Statement[0].Principal: '
        f"{AWS_PRINCIPAL}", PolicyKind.RESOURCE),
    bad("unknown principal type", policy({**ALLOW_ALL, "Principal": {"Group": "admins"}}),
        'Invalid principal in policy: "Group":"admins": Statement[0].Principal: principal types are AWS, '
        "Service, Federated, CanonicalUser.", PolicyKind.RESOURCE),
    bad("resource in a trust policy",
        one(Effect="Allow", Principal={"Service": "sagemaker.amazonaws.com"}, Action="sts:AssumeRole",
            Resource="*"),
        "Has prohibited field Resource: Statement[0]: a trust policy applies to its role, not to resources.",
        PolicyKind.TRUST),
]


@pytest.mark.parametrize(("text", "kind", "message"), MALFORMED)
def test_malformed_documents_are_refused_with_awss_sentence_and_the_place(text: str, kind: PolicyKind,
                                                                          message: str):
    with pytest.raises(MalformedPolicyDocument) as caught:
        parse_policy(text, kind)
    assert caught.value.message == message


def test_sids_of_bucket_policies_may_hold_other_characters():
    doc = parse_policy(policy({**ALLOW_ALL, "Sid": "Public read", "Principal": "*"}), PolicyKind.RESOURCE)
    assert doc.statements[0].sid == "Public read"


def test_iso_and_epoch_dates_and_ipv6_ranges_are_valid_values():
    parse_policy(policy({**ALLOW_ALL, "Condition": {
        "DateGreaterThan": {"aws:CurrentTime": ["2020", "2020-01", "2020-01-01", "2020-01-01T00:00Z",
                                                "2020-01-01T00:00:01.5+02:00", "1577836800"]},
        "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "203.0.113.7"]}}}))
