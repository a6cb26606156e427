"""The evaluator agrees with a reference model on random small policy sets and requests.
 The reference below is deliberately plain and shares nothing with the implementation: it reads the raw
 statement dicts, matches wildcards with fnmatch.fnmatchcase, splits ARNs with str.split, and decides with
 three loops (any applicable Deny? any applicable Allow? otherwise implicit deny)."""

from __future__ import annotations

import fnmatch
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sagelab.security.policy_document import PolicyKind, parse_policy
from sagelab.security.policy_evaluation import PolicySet, RequestContext

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
USERNAME_VARIABLE = "${aws:username}"

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "sagemaker:CreateModel",
           "sagemaker:DescribeModel", "sagemaker:DescribeTrainingJob"]
ACTION_PATTERNS = [*ACTIONS, "*", "s3:*", "s3:Get*", "s3:?utObject", "S3:getobject", "sagemaker:Describe*",
                   "sagemaker:*Model", "sagemaker:Create?odel", "SageMaker:DESCRIBE*", "sagemaker:*Job"]
RESOURCES = ["arn:aws:s3:::bucket", "arn:aws:s3:::bucket/a", "arn:aws:s3:::bucket/alice/x",
             "arn:aws:s3:::bucket/Bob/y", "arn:aws:s3:::other/a:b",
             f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m1",
             f"arn:aws:sagemaker:eu-west-1:{OTHER_ACCOUNT}:model/m2",
             f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/t1",
             # AWS's ArnLike example: a region * that could cross colons would reach the second account id
             f"arn:aws:sagemaker:us-east-2:{OTHER_ACCOUNT}:model/abc:{ACCOUNT}:model/doc"]
RESOURCE_PATTERNS = [*RESOURCES, "*", "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket*", "arn:aws:s3:::*/a",
                     "arn:aws:s3:::bucket/?", "arn:aws:s3:::*a*", f"arn:aws:sagemaker:*:{ACCOUNT}:model/*",
                     "arn:aws:sagemaker:us-east-1:*:model/m?", "arn:aws:sagemaker:*",
                     "arn:aws:sagemaker:*:*:*",
                     f"arn:aws:s3:::bucket/{USERNAME_VARIABLE}/*", "arn:aws:s3:::bucket/B*",
                     "arn:aws:s3:::other/*:b"]

STRING_OPERATORS = ["StringEquals", "StringNotEquals", "StringLike", "StringNotLike"]
STRING_KEYS = ["aws:username", "s3:prefix"]
STRING_VALUES = ["alice", "bob", "Bob", "al*", "?ob", "", "alice/*", "*", f"{USERNAME_VARIABLE}/*",
                 USERNAME_VARIABLE]


def _maybe_if_exists(operator: str) -> st.SearchStrategy[str]:
    return st.sampled_from([operator, operator + "IfExists"])


clauses = st.one_of(
    st.tuples(st.sampled_from(STRING_OPERATORS).flatmap(_maybe_if_exists), st.sampled_from(STRING_KEYS),
              st.lists(st.sampled_from(STRING_VALUES), min_size=1, max_size=3)),
    st.tuples(_maybe_if_exists("NumericLessThan"), st.just("s3:max-keys"),
              st.lists(st.sampled_from(["5", "10", "100"]), min_size=1, max_size=2)),
    st.tuples(_maybe_if_exists("Bool"), st.just("aws:SecureTransport"),
              st.lists(st.sampled_from(["true", "false"]), min_size=1, max_size=1)),
)


def _condition(clause_list: list[tuple[str, str, list[str]]]) -> dict:
    block: dict[str, dict[str, list[str]]] = {}
    for operator, key, values in clause_list:
        # a repeated (operator, key) keeps the last value, as a JSON object would
        block.setdefault(operator, {})[key] = values
    return block


@st.composite
def statements(draw: st.DrawFn, principals: st.SearchStrategy[object] | None = None) -> dict:
    statement: dict = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    statement["NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action"] = draw(
        st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3))
    statement["NotResource" if draw(st.booleans()) and draw(st.booleans()) else "Resource"] = draw(
        st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3))
    condition = _condition(draw(st.lists(clauses, max_size=2)))
    if condition:
        statement["Condition"] = condition
    if principals is not None:
        statement["Principal"] = draw(principals)
    return statement


resource_principals = st.sampled_from(["*", {"AWS": ALICE}, {"AWS": ACCOUNT}, {"AWS": BOB},
                                       {"AWS": [BOB, ALICE]}])
identity_documents = st.lists(st.lists(statements(), min_size=1, max_size=3), min_size=0, max_size=3)
resource_documents = st.none() | st.lists(statements(resource_principals), min_size=1, max_size=3)

requests = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS), "resource": st.sampled_from(RESOURCES)},
    optional={"aws:username": st.sampled_from(["alice", "bob", "Bob"]),
              "s3:prefix": st.sampled_from(["alice/x", "bob", "", "al", "Bob/"]),
              "s3:max-keys": st.sampled_from([1, 7, 50, "200"]),
              "aws:SecureTransport": st.sampled_from([True, False, "true", "false"])})


# --- the reference model ------------------------------------------------------------------------------------

def ref_wildcard(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def ref_substitute(pattern: str, keys: dict) -> str | None:
    if USERNAME_VARIABLE not in pattern:
        return pattern
    if "aws:username" not in keys:
        return None
    return pattern.replace(USERNAME_VARIABLE, keys["aws:username"])


def ref_action_matches(pattern: str, action: str) -> bool:
    return ref_wildcard(action.lower(), pattern.lower())


def ref_arn_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) < 6:  # a short pattern: its final * takes the rest of the ARN
        head, last = pattern_parts[:-1], pattern_parts[-1]
        rest = ":".join(arn_parts[len(head):])
        heads_match = all(ref_wildcard(a, p) for a, p in zip(arn_parts, head, strict=False))
        return len(arn_parts) > len(head) and heads_match and last.endswith("*") and ref_wildcard(rest, last)
    return len(arn_parts) == 6 and all(ref_wildcard(a, p)
                                       for a, p in zip(arn_parts, pattern_parts, strict=True))


def ref_text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def ref_clause_holds(operator: str, key: str, policy_values: list[str], keys: dict) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = base in ("StringNotEquals", "StringNotLike")
    if key not in keys:
        return True if if_exists else negated
    request_value = keys[key]
    resolved = [ref_substitute(value, keys) for value in policy_values]
    if None in resolved:
        return False
    if base in ("StringEquals", "StringNotEquals"):
        matched = any(ref_text(request_value) == p for p in resolved)
    elif base in ("StringLike", "StringNotLike"):
        matched = any(ref_wildcard(ref_text(request_value), p) for p in resolved)
    elif base == "NumericLessThan":
        matched = any(float(request_value) < float(p) for p in resolved)
    elif base == "Bool":
        matched = any(ref_text(request_value).lower() == p for p in resolved)
    else:
        raise AssertionError(f"the reference does not know {operator}")
    return matched != negated


def ref_statement_applies(statement: dict, request: dict) -> bool:
    keys = {k: v for k, v in request.items() if k not in ("action", "resource")}
    if "Action" in statement:
        if not any(ref_action_matches(p, request["action"]) for p in statement["Action"]):
            return False
    elif any(ref_action_matches(p, request["action"]) for p in statement["NotAction"]):
        return False
    if "Resource" in statement:
        patterns = [ref_substitute(p, keys) for p in statement["Resource"]]
        if not any(p is not None and ref_arn_matches(p, request["resource"]) for p in patterns):
            return False
    else:
        patterns = [ref_substitute(p, keys) for p in statement["NotResource"]]
        if None in patterns or any(ref_arn_matches(p, request["resource"]) for p in patterns
                                   if p is not None):
            return False
    for operator, body in statement.get("Condition", {}).items():
        for key, values in body.items():
            if not ref_clause_holds(operator, key, values, keys):
                return False
    return True


def ref_principal(principal: object) -> str:
    """"direct" when the statement names Alice (or everyone), "account" when it names her account."""
    if principal == "*":
        return "direct"
    listed = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
    if ALICE in listed:
        return "direct"
    return "account" if ACCOUNT in listed else "none"


def ref_decide(identity: list[list[dict]], resource: list[dict] | None, request: dict
               ) -> tuple[str, set[tuple[str, int]]]:
    denies = set()
    for number, document in enumerate(identity):
        for index, statement in enumerate(document):
            if statement["Effect"] == "Deny" and ref_statement_applies(statement, request):
                denies.add((f"p{number}", index))
    for index, statement in enumerate(resource or []):
        if (statement["Effect"] == "Deny" and ref_principal(statement["Principal"]) != "none"
                and ref_statement_applies(statement, request)):
            denies.add(("bucket", index))
    if denies:
        return "explicitDeny", denies
    for document in identity:
        for statement in document:
            if statement["Effect"] == "Allow" and ref_statement_applies(statement, request):
                return "allowed", set()
    for statement in resource or []:
        if (statement["Effect"] == "Allow" and ref_principal(statement["Principal"]) == "direct"
                and ref_statement_applies(statement, request)):
            return "allowed", set()
    return "implicitDeny", set()


# --- the property -------------------------------------------------------------------------------------------


def _document(statement_list: list[dict], kind: PolicyKind):
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": statement_list}), kind)


@settings(max_examples=400, deadline=None)
@given(identity=identity_documents, resource=resource_documents, request=requests)
def test_the_evaluator_agrees_with_the_reference_model(identity, resource, request):
    policies = PolicySet({f"p{n}": _document(d, PolicyKind.IDENTITY) for n, d in enumerate(identity)},
                         None if resource is None else _document(resource, PolicyKind.RESOURCE),
                         resource_policy_name="bucket")
    context = RequestContext(request["action"], request["resource"], principal_arn=ALICE,
                             keys={k: v for k, v in request.items() if k not in ("action", "resource")})
    decision = policies.evaluate(context)
    expected, expected_denies = ref_decide(identity, resource, request)
    assert decision.decision.value == expected
    if expected == "explicitDeny":
        assert {(ref.policy, ref.index) for ref in decision.matched_statements} == expected_denies


@settings(max_examples=300, deadline=None)
@given(statement_list=st.lists(statements(), min_size=1, max_size=4), request=requests)
def test_each_statement_applies_exactly_when_the_reference_says(statement_list, request):
    """Statement by statement, so that a wrong answer cannot hide behind another statement's effect."""
    context = RequestContext(request["action"], request["resource"], principal_arn=ALICE,
                             keys={k: v for k, v in request.items() if k not in ("action", "resource")})
    for statement in statement_list:
        as_allow = {**statement, "Effect": "Allow"}
        decision = PolicySet({"p": _document([as_allow], PolicyKind.IDENTITY)}).evaluate(context)
        assert decision.allowed == ref_statement_applies(as_allow, request), as_allow
