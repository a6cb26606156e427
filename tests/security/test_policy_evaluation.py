"""The evaluator against the examples of AWS's policy reference, one row per documented behaviour."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from sagelab.security.policy_document import PolicyKind, parse_policy
from sagelab.security.policy_evaluation import (
    DecisionCache,
    EvalDecision,
    PolicySet,
    PolicySource,
    RequestContext,
    denial_message,
    evaluate,
)

ALLOWED = EvalDecision.ALLOWED
EXPLICIT_DENY = EvalDecision.EXPLICIT_DENY
IMPLICIT_DENY = EvalDecision.IMPLICIT_DENY
ACCOUNT = "111122223333"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BUCKET = "arn:aws:s3:::bucket"
MODEL = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/churn"


def doc(*statements: dict, version: str = "2012-10-17", kind: PolicyKind = PolicyKind.IDENTITY):
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}), kind)


def allow(action: object = "*", resource: object = "*", sid: str = "", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **({"Sid": sid} if sid else {}),
            **extra}


def deny(action: object = "*", resource: object = "*", sid: str = "", **extra: object) -> dict:
    return {**allow(action, resource, sid, **extra), "Effect": "Deny"}


def request(action: str, resource: str = "*", **keys: object) -> RequestContext:
    return RequestContext(action, resource, principal_arn=ALICE, keys={k.replace("__", ":"): v for k, v in
                                                                        keys.items()})


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    statements: tuple[dict, ...]
    request: RequestContext
    decision: EvalDecision
    sids: tuple[str, ...] = ()
    version: str = "2012-10-17"


NOT_IAM = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
NOT_SECRET = {"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/secret/*"}
HOME = allow("s3:*", f"{BUCKET}/home/${{aws:username}}/*")
LIST_HOME = allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["", "${aws:username}/*"]}})
SMALL_INSTANCES = allow("ec2:RunInstances",
                        Condition={"StringLikeIfExists": {"ec2:InstanceType": ["t2.*", "m3.*"]}})
TLS_ONLY = (allow(sid="All"),
            deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}}, sid="TLSOnly"))
NO_P4D = deny("sagemaker:CreateTrainingJob",
              Condition={"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": "ml.p4d.24xlarge"}})
KEY1_TAGS_ONLY = deny("iam:Tag*", Condition={"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}})
FINANCE = "arn:aws:someservice:*:111122223333:finance/*"
STORE_ARN = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/doc.txt"


def m5_or_c5(*patterns: str) -> dict:
    return allow("sagemaker:CreateTrainingJob",
                 Condition={"ForAllValues:StringLike": {"sagemaker:InstanceTypes": list(patterns)}})


def when(condition: dict, *more: dict) -> tuple[dict, ...]:
    """An Allow of everything under one condition block, then any further statements."""
    return (allow(Condition=condition), *more)


CASES = [
    # Effects and their order
    Case("nothing allows: implicit deny", (allow("s3:GetObject"),), request("s3:PutObject"), IMPLICIT_DENY),
    Case("an allow allows", (allow("s3:GetObject", sid="Read"),), request("s3:GetObject"), ALLOWED,
         ("Read",)),
    Case("deny beats allow", (allow(sid="All"), deny("s3:DeleteObject", sid="NoDelete")),
         request("s3:DeleteObject", f"{BUCKET}/k"), EXPLICIT_DENY, ("NoDelete",)),
    Case("a deny that does not apply leaves the allow",
         (allow(sid="All"), deny("s3:DeleteObject", sid="NoDelete")),
         request("s3:GetObject", f"{BUCKET}/k"), ALLOWED, ("All",)),
    # Action / NotAction
    Case("NotAction with Allow: everything but IAM", (NOT_IAM,), request("sagemaker:CreateModel", MODEL),
         ALLOWED),
    Case("NotAction with Allow: not IAM itself", (NOT_IAM,), request("iam:CreateUser"), IMPLICIT_DENY),
    Case("action wildcard", (allow("sagemaker:Describe*"),), request("sagemaker:DescribeTrainingJob"),
         ALLOWED),
    Case("action wildcard does not reach other verbs", (allow("sagemaker:Describe*"),),
         request("sagemaker:DeleteModel"), IMPLICIT_DENY),
    Case("actions ignore case", (allow("SageMaker:describe*"),), request("sagemaker:DescribeModel"), ALLOWED),
    Case("? is one character", (allow("s3:Get?bject"),), request("s3:GetObject"), ALLOWED),
    Case("? is exactly one character", (allow("s3:Get?bject"),), request("s3:GetObbject"), IMPLICIT_DENY),
    Case("* is every action", (allow("*"),), request("glue:GetTable"), ALLOWED),
    # Resource / NotResource
    Case("NotResource: all but the listed", (NOT_SECRET,), request("s3:GetObject", f"{BUCKET}/public/a"),
         ALLOWED),
    Case("NotResource: not the listed", (NOT_SECRET,), request("s3:GetObject", f"{BUCKET}/secret/a"),
         IMPLICIT_DENY),
    Case("resource * spans slashes", (allow("s3:*", f"{BUCKET}/*"),),
         request("s3:GetObject", f"{BUCKET}/a/b/c"), ALLOWED),
    Case("resources are case-sensitive", (allow("s3:*", f"{BUCKET}/Data/*"),),
         request("s3:GetObject", f"{BUCKET}/data/x"), IMPLICIT_DENY),
    Case("a region * stays in its segment", (allow("sagemaker:*", f"arn:aws:sagemaker:*:{ACCOUNT}:model/*"),),
         request("sagemaker:DescribeModel",
                 f"arn:aws:sagemaker:us-east-1:999999999999:model/x:{ACCOUNT}:model/y"), IMPLICIT_DENY),
    Case("segment wildcards", (allow("sagemaker:*", "arn:aws:sagemaker:*:*:model/*"),),
         request("sagemaker:DescribeModel", MODEL), ALLOWED),
    Case("a trailing * of a short ARN runs to the end", (allow("sagemaker:*", "arn:aws:sagemaker:*"),),
         request("sagemaker:DescribeModel", MODEL), ALLOWED),
    Case("the resource part keeps its colons", (allow("lambda:*", "arn:aws:lambda:*:*:function:f*"),),
         request("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn:prod"), ALLOWED),
    # Policy variables
    Case("${aws:username} in a Resource", (HOME,),
         request("s3:GetObject", f"{BUCKET}/home/alice/notes", aws__username="alice"), ALLOWED),
    Case("${aws:username} is someone else's home", (HOME,),
         request("s3:GetObject", f"{BUCKET}/home/bob/notes", aws__username="alice"), IMPLICIT_DENY),
    Case("an unresolved variable matches nothing", (HOME,),
         request("s3:GetObject", f"{BUCKET}/home/alice/notes"), IMPLICIT_DENY),
    Case("an unresolved variable voids a NotResource",
         ({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/home/${{aws:username}}/*"},),
         request("s3:GetObject", f"{BUCKET}/other"), IMPLICIT_DENY),
    Case("a variable's default", (allow("s3:*", f"{BUCKET}/${{aws:userid, 'anonymous'}}/*"),),
         request("s3:GetObject", f"{BUCKET}/anonymous/x"), ALLOWED),
    Case("a substituted value is literal, not a pattern", (allow("s3:*", f"{BUCKET}/${{aws:username}}"),),
         request("s3:GetObject", f"{BUCKET}/alice", aws__username="a*"), IMPLICIT_DENY),
    Case("${*} is a literal asterisk", (allow("s3:*", f"{BUCKET}/star${{*}}"),),
         request("s3:GetObject", f"{BUCKET}/star*"), ALLOWED),
    Case("${*} does not match other text", (allow("s3:*", f"{BUCKET}/star${{*}}"),),
         request("s3:GetObject", f"{BUCKET}/starry"), IMPLICIT_DENY),
    Case("2008-10-17 has no variables", (allow("s3:*", f"{BUCKET}/${{aws:username}}"),),
         request("s3:GetObject", f"{BUCKET}/alice", aws__username="alice"), IMPLICIT_DENY,
         version="2008-10-17"),
    Case("StringLike ${aws:username}/* on s3:prefix", (LIST_HOME,),
         request("s3:ListBucket", BUCKET, aws__username="alice", s3__prefix="alice/photos/"), ALLOWED),
    Case("StringLike ${aws:username}/* refuses another prefix", (LIST_HOME,),
         request("s3:ListBucket", BUCKET, aws__username="alice", s3__prefix="bob/"), IMPLICIT_DENY),
    # String operators
    Case("StringEquals", when({"StringEquals": {"aws:username": ["alice", "bob"]}}),
         request("s3:GetObject", aws__username="bob"), ALLOWED),
    Case("StringEquals is case-sensitive", when({"StringEquals": {"aws:username": "alice"}}),
         request("s3:GetObject", aws__username="Alice"), IMPLICIT_DENY),
    Case("StringEqualsIgnoreCase", when({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}),
         request("s3:GetObject", aws__username="alice"), ALLOWED),
    Case("StringNotEquals: none of the values", when({"StringNotEquals": {"aws:username": ["a", "b"]}}),
         request("s3:GetObject", aws__username="b"), IMPLICIT_DENY),
    Case("StringNotEqualsIgnoreCase", when({"StringNotEqualsIgnoreCase": {"aws:username": "BOB"}}),
         request("s3:GetObject", aws__username="bob"), IMPLICIT_DENY),
    Case("StringNotLike", when({"StringNotLike": {"s3:prefix": "private/*"}}),
         request("s3:ListBucket", s3__prefix="public/x"), ALLOWED),
    Case("condition keys ignore case", when({"StringEquals": {"AWS:UserName": "alice"}}),
         request("s3:GetObject", aws__username="alice"), ALLOWED),
    # Missing keys
    Case("a missing key fails a positive operator", when({"StringEquals": {"aws:username": "alice"}}),
         request("s3:GetObject"), IMPLICIT_DENY),
    Case("a missing key satisfies a negated operator",
         (deny(Condition={"StringNotEquals": {"aws:PrincipalTag/team": "ml"}}), allow()),
         request("s3:GetObject"), EXPLICIT_DENY),
    Case("IfExists with the key missing", (SMALL_INSTANCES,), request("ec2:RunInstances"), ALLOWED),
    Case("IfExists with the key present checks it", (SMALL_INSTANCES,),
         request("ec2:RunInstances", ec2__InstanceType="p3.2xlarge"), IMPLICIT_DENY),
    Case("Null true: the key must be missing", when({"Null": {"aws:TokenIssueTime": "true"}}),
         request("ec2:DescribeInstances"), ALLOWED),
    Case("Null true refuses a present key", when({"Null": {"aws:TokenIssueTime": "true"}}),
         request("ec2:DescribeInstances", aws__TokenIssueTime="2024-01-01T00:00:00Z"), IMPLICIT_DENY),
    Case("Null false: the key must be present", when({"Null": {"aws:TokenIssueTime": False}}),
         request("ec2:DescribeInstances", aws__TokenIssueTime="2024-01-01T00:00:00Z"), ALLOWED),
    # Set qualifiers over multi-valued keys
    Case("ForAllValues: every value listed", (m5_or_c5("ml.m5.*", "ml.c5.*"),),
         request("sagemaker:CreateTrainingJob", sagemaker__InstanceTypes=["ml.m5.large", "ml.c5.xlarge"]),
         ALLOWED),
    Case("ForAllValues: one value outside", (m5_or_c5("ml.m5.*"),),
         request("sagemaker:CreateTrainingJob", sagemaker__InstanceTypes=["ml.m5.large", "ml.p3.2xlarge"]),
         IMPLICIT_DENY),
    Case("ForAllValues on an empty set is true", (m5_or_c5("ml.m5.*"),),
         request("sagemaker:CreateTrainingJob", sagemaker__InstanceTypes=[]), ALLOWED),
    Case("ForAllValues on a missing key is true", (m5_or_c5("ml.m5.*"),),
         request("sagemaker:CreateTrainingJob"), ALLOWED),
    Case("ForAnyValue: one value listed", (NO_P4D, allow()),
         request("sagemaker:CreateTrainingJob", sagemaker__InstanceTypes=["ml.m5.large", "ml.p4d.24xlarge"]),
         EXPLICIT_DENY),
    Case("ForAnyValue on a missing key is false", (NO_P4D, allow(sid="Rest")),
         request("sagemaker:CreateTrainingJob"), ALLOWED, ("Rest",)),
    Case("ForAllValues:StringNotLike: none may match", (KEY1_TAGS_ONLY, allow(sid="Rest")),
         request("iam:TagUser", aws__TagKeys=["key1:legal", "key1:hr"]), ALLOWED, ("Rest",)),
    Case("ForAllValues:StringNotLike: all outside", (KEY1_TAGS_ONLY, allow()),
         request("iam:TagUser", aws__TagKeys=["key2:audit"]), EXPLICIT_DENY),
    Case("no qualifier on many values: one match suffices",
         when({"StringEquals": {"sagemaker:InstanceTypes": "ml.m5.large"}}),
         request("sagemaker:CreateTrainingJob", sagemaker__InstanceTypes=["ml.c5.xlarge", "ml.m5.large"]),
         ALLOWED),
    # Numeric, date, boolean, binary
    Case("NumericLessThanEquals", when({"NumericLessThanEquals": {"s3:max-keys": 10}}),
         request("s3:ListBucket", **{"s3__max-keys": "10"}), ALLOWED),
    Case("NumericLessThan refuses a bigger number", when({"NumericLessThan": {"s3:max-keys": "10"}}),
         request("s3:ListBucket", **{"s3__max-keys": 1000}), IMPLICIT_DENY),
    Case("NumericGreaterThan with decimals",
         when({"NumericGreaterThan": {"sagemaker:VolumeKmsKeyCount": "1.5"}}),
         request("sagemaker:CreateModel", sagemaker__VolumeKmsKeyCount=2), ALLOWED),
    Case("NumericNotEquals", when({"NumericNotEquals": {"s3:max-keys": ["1", "2"]}}),
         request("s3:ListBucket", **{"s3__max-keys": 3}), ALLOWED),
    Case("a non-numeric request value matches no number", when({"NumericEquals": {"s3:max-keys": "3"}}),
         request("s3:ListBucket", **{"s3__max-keys": "three"}), IMPLICIT_DENY),
    Case("DateLessThan with a datetime", when({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
         request("s3:GetObject", aws__CurrentTime=dt.datetime(2029, 12, 31, 23, 59, tzinfo=dt.UTC)), ALLOWED),
    Case("DateGreaterThan with an ISO string and an offset",
         when({"DateGreaterThan": {"aws:CurrentTime": "2024-06-01T12:00:00+02:00"}}),
         request("s3:GetObject", aws__CurrentTime="2024-06-01T10:30:00Z"), ALLOWED),
    Case("DateEquals with epoch seconds", when({"DateEquals": {"aws:EpochTime": "1577836800"}}),
         request("s3:GetObject", aws__EpochTime=1577836800), ALLOWED),
    Case("DateLessThanEquals with a date only",
         when({"DateLessThanEquals": {"aws:CurrentTime": "2020-01-01"}}),
         request("s3:GetObject", aws__CurrentTime="2020-01-01T00:00:01Z"), IMPLICIT_DENY),
    Case("Bool on aws:SecureTransport denies plain HTTP", TLS_ONLY,
         request("s3:GetObject", aws__SecureTransport=False), EXPLICIT_DENY, ("TLSOnly",)),
    Case("Bool on aws:SecureTransport lets HTTPS through", TLS_ONLY,
         request("s3:GetObject", aws__SecureTransport="true"), ALLOWED, ("All",)),
    Case("BinaryEquals", when({"BinaryEquals": {"custom:blob": "QmluYXJ5"}}),
         request("s3:GetObject", custom__blob=b"Binary"), ALLOWED),
    # IP addresses
    Case("IpAddress with a CIDR", when({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
         request("s3:GetObject", aws__SourceIp="203.0.113.77"), ALLOWED),
    Case("IpAddress outside the CIDR", when({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
         request("s3:GetObject", aws__SourceIp="198.51.100.1"), IMPLICIT_DENY),
    Case("IpAddress without a prefix is one address", when({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}),
         request("s3:GetObject", aws__SourceIp="203.0.113.8"), IMPLICIT_DENY),
    Case("IpAddress with IPv6", when({"IpAddress": {"aws:SourceIp": ["2001:DB8:1234:5678::/64"]}}),
         request("s3:GetObject", aws__SourceIp="2001:db8:1234:5678::1"), ALLOWED),
    Case("NotIpAddress denies outsiders",
         (allow(), deny(Condition={"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}})),
         request("s3:GetObject", aws__SourceIp="8.8.8.8"), EXPLICIT_DENY),
    # ARN operators
    Case("ArnLike matches segment by segment",
         when({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}}),
         request("s3:GetObject", aws__PrincipalArn=ALICE), ALLOWED),
    Case("ArnLike: a * does not cross colons where StringLike would",
         when({"ArnLike": {"aws:SourceArn": FINANCE}}), request("s3:GetObject", aws__SourceArn=STORE_ARN),
         IMPLICIT_DENY),
    Case("StringLike does cross them", when({"StringLike": {"aws:SourceArn": FINANCE}}),
         request("s3:GetObject", aws__SourceArn=STORE_ARN), ALLOWED),
    Case("ArnNotEquals", (allow(), deny(Condition={"ArnNotEquals": {"aws:PrincipalArn": ALICE}})),
         request("s3:GetObject", aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:user/bob"), EXPLICIT_DENY),
    Case("ArnEquals with a variable",
         when({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:*:${aws:username}-topic"}}),
         request("sns:Publish", aws__username="alice",
                 aws__SourceArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:alice-topic"), ALLOWED),
    # Blocks: operators AND-ed, values OR-ed
    Case("all operators of a block must hold",
         when({"StringEquals": {"aws:username": "alice"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
         request("s3:GetObject", aws__username="alice", aws__SourceIp="192.168.1.1"), IMPLICIT_DENY),
    Case("all keys of an operator must hold",
         when({"StringEquals": {"aws:username": "alice", "aws:PrincipalTag/team": "ml"}}),
         request("s3:GetObject", aws__username="alice", **{"aws__PrincipalTag/team": "ml"}), ALLOWED),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_documented_behaviour(case: Case):
    decision = evaluate(case.request, {"policy": doc(*case.statements, version=case.version)})
    assert decision.decision is case.decision
    if case.sids:
        assert decision.matched_sids == case.sids


def test_matched_statements_name_policy_source_and_position():
    decision = evaluate(request("s3:GetObject"), {"ReadOnly": doc(allow("s3:Get*", sid="Read")),
                                                  "Extra": doc(allow("s3:List*"), allow("s3:*"))})
    assert [(r.policy, r.source, r.index, r.sid) for r in decision.matched_statements] == [
        ("ReadOnly", PolicySource.IDENTITY, 0, "Read"), ("Extra", PolicySource.IDENTITY, 1, None)]


def test_every_applicable_deny_is_reported():
    decision = evaluate(request("s3:DeleteObject"), {"a": doc(deny("s3:Delete*", sid="One")),
                                                     "b": doc(allow(), deny("s3:*", sid="Two"))})
    assert decision.decision is EXPLICIT_DENY and decision.matched_sids == ("One", "Two")


# --- resource policies --------------------------------------------------------------------------------------

def bucket_policy(*statements: dict):
    return doc(*statements, kind=PolicyKind.RESOURCE)


def grant(principal: object, action: str = "s3:GetObject", effect: str = "Allow", sid: str = "",
          resource: str = f"{BUCKET}/*", key: str = "Principal") -> dict:
    return {"Effect": effect, key: principal, "Action": action, "Resource": resource,
            **({"Sid": sid} if sid else {})}


READ = RequestContext("s3:GetObject", f"{BUCKET}/k", principal_arn=ALICE)


def test_a_resource_policy_naming_the_principal_suffices_in_the_same_account():
    decision = evaluate(READ, {}, bucket_policy(grant({"AWS": ALICE}, sid="Alice")))
    assert decision.decision is ALLOWED and decision.matched_statements[0].source is PolicySource.RESOURCE
    assert decision.matched_sids == ("Alice",)


def test_an_identity_allow_suffices_without_a_resource_grant():
    assert evaluate(READ, {"id": doc(allow("s3:GetObject"))}, bucket_policy(grant({"AWS": "arn:aws:iam::"
                    f"{ACCOUNT}:user/bob"}))).allowed


def test_a_resource_policy_for_someone_else_grants_nothing():
    decision = evaluate(READ, {}, bucket_policy(grant({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"})))
    assert decision.decision is IMPLICIT_DENY


def test_naming_the_account_delegates_to_identity_policies():
    policy = bucket_policy(grant({"AWS": ACCOUNT}))
    assert evaluate(READ, {}, policy).decision is IMPLICIT_DENY
    assert evaluate(READ, {"id": doc(allow("s3:GetObject"))}, policy).allowed
    root = dataclasses.replace(READ, principal_arn=f"arn:aws:iam::{ACCOUNT}:root")
    assert evaluate(root, {}, policy).allowed


def test_a_deny_in_the_resource_policy_wins_over_an_identity_allow():
    policy = bucket_policy(grant("*", action="s3:*", effect="Deny", sid="Lock"))
    decision = evaluate(READ, {"id": doc(allow())}, policy)
    assert decision.decision is EXPLICIT_DENY
    assert decision.matched_statements[0].source is PolicySource.RESOURCE


def test_a_resource_deny_naming_the_account_applies_to_its_principals():
    policy = bucket_policy(grant({"AWS": ACCOUNT}, action="s3:*", effect="Deny"))
    assert evaluate(READ, {"id": doc(allow())}, policy).decision is EXPLICIT_DENY


def test_a_public_bucket_policy_lets_anonymous_callers_read():
    anonymous = RequestContext("s3:GetObject", f"{BUCKET}/k")
    policy = bucket_policy(grant("*", sid="PublicRead"))
    assert evaluate(anonymous, {}, policy).allowed
    write = dataclasses.replace(anonymous, action="s3:PutObject")
    assert evaluate(write, {}, policy).decision is IMPLICIT_DENY


def test_not_principal_with_deny_spares_only_the_listed():
    policy = bucket_policy(grant({"AWS": ALICE}, action="s3:*", effect="Deny", key="NotPrincipal"))
    everyone = {"id": doc(allow())}
    assert evaluate(READ, everyone, policy).allowed
    bob = dataclasses.replace(READ, principal_arn=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert evaluate(bob, everyone, policy).decision is EXPLICIT_DENY


def test_a_role_arn_in_a_resource_policy_covers_its_sessions():
    policy = bucket_policy(grant({"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/analyst"}))
    session = dataclasses.replace(READ, principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/analyst/alice")
    assert evaluate(session, {}, policy).allowed
    other = dataclasses.replace(READ, principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/alice")
    assert evaluate(other, {}, policy).decision is IMPLICIT_DENY


def test_cross_account_access_needs_both_sides():
    visitor = RequestContext("s3:GetObject", f"{BUCKET}/k", resource_account=ACCOUNT,
                             principal_arn="arn:aws:iam::999999999999:user/eve")
    policy = bucket_policy(grant({"AWS": "999999999999"}))
    assert evaluate(visitor, {}, policy).decision is IMPLICIT_DENY
    assert evaluate(visitor, {"id": doc(allow("s3:GetObject"))}, None).decision is IMPLICIT_DENY
    assert evaluate(visitor, {"id": doc(allow("s3:GetObject"))}, policy).allowed


def test_a_trust_policy_must_itself_allow():
    trust = doc({"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                 "Action": "sts:AssumeRole"}, kind=PolicyKind.TRUST)
    role = f"arn:aws:iam::{ACCOUNT}:role/execution"
    by_service = RequestContext("sts:AssumeRole", role, service_principal="sagemaker.amazonaws.com")
    by_alice = RequestContext("sts:AssumeRole", role, principal_arn=ALICE)
    assert evaluate(by_service, {}, trust, require_resource_grant=True).allowed
    alone = evaluate(by_alice, {"id": doc(allow())}, trust, require_resource_grant=True)
    assert alone.decision is IMPLICIT_DENY
    account_trust = doc({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
                        kind=PolicyKind.TRUST)
    assert evaluate(by_alice, {}, account_trust, require_resource_grant=True).decision is IMPLICIT_DENY
    assert evaluate(by_alice, {"id": doc(allow("sts:AssumeRole"))}, account_trust,
                    require_resource_grant=True).allowed


# --- caching and messages -----------------------------------------------------------------------------------

def test_the_cache_reuses_decisions_and_ignores_keys_no_policy_reads():
    home = allow("s3:ListBucket", Condition={"StringLike": {"s3:prefix": "home/*"}})
    policies = PolicySet({"p": doc(home)})
    cache = DecisionCache(maxsize=8)
    first = RequestContext("s3:ListBucket", BUCKET, ALICE, keys={"s3:prefix": "home/a", "aws:RequestId": "1"})
    again = RequestContext("s3:ListBucket", BUCKET, ALICE, keys={"s3:prefix": "home/a", "aws:RequestId": "2"})
    other = RequestContext("s3:ListBucket", BUCKET, ALICE, keys={"s3:prefix": "etc/"})
    assert cache.evaluate(policies, first).allowed
    assert cache.evaluate(policies, again).allowed
    assert cache.evaluate(policies, other).decision is IMPLICIT_DENY
    assert (cache.hits, cache.misses, len(cache)) == (1, 2, 2)


def test_a_changed_policy_set_never_meets_a_stale_decision():
    cache = DecisionCache()
    read = RequestContext("s3:GetObject", f"{BUCKET}/k", ALICE)
    assert cache.evaluate(PolicySet({"p": doc(allow())}), read).allowed
    assert cache.evaluate(PolicySet({"p": doc(deny())}), read).decision is EXPLICIT_DENY
    assert cache.misses == 2


def test_the_cache_is_bounded():
    policies = PolicySet({"p": doc(allow())})
    cache = DecisionCache(maxsize=2)
    for name in "abc":
        cache.evaluate(policies, RequestContext("s3:GetObject", f"{BUCKET}/{name}", ALICE))
    assert len(cache) == 2


def test_denial_messages_follow_aws_wording():
    implicit = evaluate(READ, {})
    assert denial_message(READ, implicit) == (
        f"User: {ALICE} is not authorized to perform: s3:GetObject on resource: {BUCKET}/k because no "
        "identity-based policy allows the s3:GetObject action")
    explicit = evaluate(READ, {"p": doc(deny())})
    assert denial_message(READ, explicit).endswith("with an explicit deny in an identity-based policy")


def test_a_value_that_cannot_be_a_cache_key_is_decided_uncached():
    policies = PolicySet({"p": doc(allow(Condition={"StringEquals": {"custom:odd": "x"}}))})
    odd = RequestContext("s3:GetObject", f"{BUCKET}/k", ALICE, keys={"custom:odd": {"not": "hashable"}})
    cache = DecisionCache()
    assert cache.evaluate(policies, odd).decision is IMPLICIT_DENY
    assert len(cache) == 0
