"""IAM policy documents: a policy's JSON text parsed once into typed, frozen, ready-to-match values.

`parse_policy(text, kind)` accepts the shapes AWS accepts (Statement as one object or a list; Action, Resource
and Principal entries as one string or a list; condition values as strings, numbers, booleans or lists of
them) and refuses anything else with MalformedPolicyDocument. Its message starts with the sentence AWS answers
with ("Syntax errors in policy.", "Policy statement must contain actions.", ...), so clients that look for it
find it, and goes on to say where the problem is and what was expected.

The kind says which elements a document must or must not have:

- IDENTITY (user, group and role policies): no Principal; Sids are alphanumeric.
- RESOURCE (bucket policies and the like): Principal or NotPrincipal required; Sids may hold other characters.
- TRUST (a role's assume-role policy): Principal required, Resource prohibited; Sids are alphanumeric.

Wildcard patterns are compiled here, once per document, so evaluation only runs prepared matchers.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable
from typing import Any

from sagelab.errors import SagelabError
from sagelab.security.policy_conditions import ConditionClause, parse_operator
from sagelab.security.policy_patterns import any_of, arn_source, compiled_arn, glob_source, has_wildcard
from sagelab.security.policy_variables import Chunk, Template, VariableLookup

__all__ = ["ActionClause", "Effect", "MalformedPolicyDocument", "PolicyDocument", "PolicyKind",
           "PrincipalClause", "ResourceClause", "Statement", "VERSION_2008", "VERSION_2012", "parse_policy"]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
#: A document without Version is read as the old language, where `${...}` is plain text.
DEFAULT_VERSION = VERSION_2008

SYNTAX_ERRORS = "Syntax errors in policy."
LEGACY_PARSING = "The policy failed legacy parsing"
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
SID_NOT_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_NOT_ALPHANUMERIC = ("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the "
                        "regular expression [0-9A-Za-z]*")
PRINCIPAL_IN_IDENTITY_POLICY = "Policy document should not specify a principal."
MISSING_PRINCIPAL = "Missing required field Principal"
PROHIBITED_RESOURCE = "Has prohibited field Resource"
NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
RESOURCE_VENDOR = "Resource vendor must be fully qualified and cannot contain regexes."


class MalformedPolicyDocument(SagelabError):
    """A policy that AWS would refuse; `aws_message` is AWS's own sentence, `detail` says where and why."""

    code = "MalformedPolicyDocument"
    s3_code = "MalformedPolicy"
    status = 400

    def __init__(self, aws_message: str, detail: str = ""):
        super().__init__(_joined_message(aws_message, detail))
        self.aws_message = aws_message
        self.detail = detail


def _joined_message(aws_message: str, detail: str) -> str:
    """AWS's sentence verbatim, then the detail as a sentence of its own."""
    if not detail:
        return aws_message
    if aws_message.endswith("."):
        return f"{aws_message} {detail[0].upper()}{detail[1:]}"
    return f"{aws_message}: {detail}"


class PolicyKind(enum.Enum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclasses.dataclass(frozen=True)
class ActionClause:
    """Action (negated=False) or NotAction (negated=True); patterns match case-insensitively."""

    patterns: tuple[str, ...]
    negated: bool
    _exact: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _wild: re.Pattern[str] | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lowered = [p.lower() for p in self.patterns]
        object.__setattr__(self, "_exact", frozenset(p for p in lowered if not has_wildcard(p)))
        wild = any_of(glob_source([(p, True)]) for p in lowered if has_wildcard(p))
        object.__setattr__(self, "_wild", wild)

    @property
    def services(self) -> frozenset[str] | None:
        """The (lower-case) service prefixes this clause can cover; None when it may cover any service.

        Service prefixes cannot hold wildcards, so only `"*"` and NotAction reach every service; evaluators
        use this to skip statements about other services.
        """
        if self.negated or "*" in self.patterns:
            return None
        return frozenset(p.split(":", 1)[0].lower() for p in self.patterns)

    def covers(self, action_lower: str) -> bool:
        """Whether the statement applies to this (lower-case) action."""
        hit = action_lower in self._exact or (
            self._wild is not None and self._wild.fullmatch(action_lower) is not None)
        return hit != self.negated


@dataclasses.dataclass(frozen=True)
class _TemplatedArn:
    """An ARN pattern whose resource part holds policy variables; the first five segments are fixed text."""

    prefix: str
    resource: Template

    def chunks(self, lookup: VariableLookup) -> tuple[Chunk, ...] | None:
        resolved = self.resource.chunks(lookup)
        return None if resolved is None else ((self.prefix, True), *resolved)


@dataclasses.dataclass(frozen=True)
class ResourceClause:
    """Resource (negated=False) or NotResource (negated=True); ARN patterns, case-sensitive."""

    patterns: tuple[str, ...]
    negated: bool
    variables_enabled: bool
    _exact: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _wild: re.Pattern[str] | None = dataclasses.field(init=False, repr=False, compare=False)
    _templated: tuple[_TemplatedArn, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact, wild, templated = set(), [], []
        for pattern in self.patterns:
            prefix, resource = _split_arn(pattern)
            template = Template.parse(resource, self.variables_enabled) if resource is not None else None
            if template is not None and not template.is_static:
                templated.append(_TemplatedArn(prefix, template))
            elif template is not None and template.text != template.render():
                # only escapes such as ${*}: static, but not the literal text of the policy
                wild.append(arn_source(((prefix, True), *(template.chunks() or ()))))
            elif has_wildcard(pattern):
                wild.append(arn_source([(pattern, True)]))
            else:
                exact.add(pattern)
        object.__setattr__(self, "_exact", frozenset(exact))
        object.__setattr__(self, "_wild", any_of(wild))
        object.__setattr__(self, "_templated", tuple(templated))

    @property
    def variable_keys(self) -> frozenset[str]:
        return frozenset(v.key for t in self._templated for v in t.resource.variables)

    def covers(self, resource: str, lookup: VariableLookup) -> bool:
        """Whether the statement applies to this resource ARN.

        A pattern whose variable does not resolve matches nothing; under NotResource it makes the statement
        not apply at all, since AWS treats a statement with an unresolvable variable as invalid.
        """
        hit = resource in self._exact or (
            self._wild is not None and self._wild.fullmatch(resource) is not None)
        unresolved = False
        for templated in self._templated:
            if hit:
                break
            chunks = templated.chunks(lookup)
            if chunks is None:
                unresolved = True
            elif compiled_arn(chunks).fullmatch(resource) is not None:
                hit = True
        if not self.negated:
            return hit
        return not hit and not unresolved


def _split_arn(pattern: str) -> tuple[str, str | None]:
    """(the first five segments with their colons, the resource part); (pattern, None) without a sixth."""
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        return pattern, None
    return ":".join(parts[:5]) + ":", parts[5]


@dataclasses.dataclass(frozen=True)
class PrincipalClause:
    """Principal (negated=False) or NotPrincipal (negated=True) of a resource or trust policy.

    `aws` holds ARNs; an account id written as `"123456789012"` is stored as `arn:aws:iam::123456789012:root`,
    which AWS treats the same.
    """

    everyone: bool = False
    aws: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()  # lower-case
    federated: frozenset[str] = frozenset()
    canonical_users: frozenset[str] = frozenset()
    negated: bool = False


@dataclasses.dataclass(frozen=True)
class Statement:
    index: int  # position in the document, from 0
    sid: str | None
    effect: Effect
    actions: ActionClause
    resources: ResourceClause | None  # None only in trust policies, which apply to the role itself
    principals: PrincipalClause | None  # None in identity policies
    conditions: tuple[ConditionClause, ...]

    @property
    def referenced_keys(self) -> frozenset[str]:
        """Lower-case condition keys (variables included) that can change whether this statement applies."""
        keys: set[str] = set()
        for clause in self.conditions:
            keys |= clause.referenced_keys
        if self.resources is not None:
            keys |= self.resources.variable_keys
        return frozenset(keys)


@dataclasses.dataclass(frozen=True)
class PolicyDocument:
    version: str
    id: str | None
    statements: tuple[Statement, ...]
    kind: PolicyKind
    source: str  # the JSON text as given, for storage and for answering Get*Policy

    @property
    def referenced_keys(self) -> frozenset[str]:
        keys: set[str] = set()
        for statement in self.statements:
            keys |= statement.referenced_keys
        return frozenset(keys)


# --- parsing ------------------------------------------------------------------------------------------------

_TOP_LEVEL = ("Version", "Id", "Statement")
_STATEMENT_ELEMENTS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                       "NotResource", "Condition")
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_VENDOR = re.compile(r"^[A-Za-z0-9.-]+$")
_SID = re.compile(r"^[0-9A-Za-z]*$")
_PARTITION = re.compile(r"^aws(-[a-z]+)*$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_AWS_PRINCIPAL_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:("
    r"iam::\d{12}:(root|user/.+|role/.+)"
    r"|sts::\d{12}:(assumed-role/[^/]+/.+|federated-user/.+))$")


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise MalformedPolicyDocument(SYNTAX_ERRORS, f"the element {key!r} appears twice in one object.")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> None:
    raise MalformedPolicyDocument(SYNTAX_ERRORS, f"{name} is not a JSON value.")


def parse_policy(text: str | bytes, kind: PolicyKind = PolicyKind.IDENTITY) -> PolicyDocument:
    """The policy a JSON text states; MalformedPolicyDocument when AWS would refuse it."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPolicyDocument(SYNTAX_ERRORS, "the policy is not UTF-8 text.") from None
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise MalformedPolicyDocument(
            SYNTAX_ERRORS, f"the policy is not valid JSON ({error.msg} at line {error.lineno} column "
                           f"{error.colno}).") from None
    if not isinstance(data, dict):
        raise MalformedPolicyDocument(SYNTAX_ERRORS,
                                      f"the policy must be a JSON object, got {_type_name(data)}.")
    for element in data:
        if element not in _TOP_LEVEL:
            raise MalformedPolicyDocument(
                SYNTAX_ERRORS, f"unknown element {element!r} at the top level; a policy has Version, Id and "
                               "Statement.")
    version = data.get("Version", DEFAULT_VERSION)
    if version not in (VERSION_2012, VERSION_2008):
        raise MalformedPolicyDocument(
            SYNTAX_ERRORS, f"Version must be {VERSION_2012!r} or {VERSION_2008!r}, got {version!r}.")
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicyDocument(SYNTAX_ERRORS, f"Id must be a string, got {_type_name(policy_id)}.")
    if "Statement" not in data:
        raise MalformedPolicyDocument(SYNTAX_ERRORS, "the policy has no Statement.")
    raw_statements = data["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise MalformedPolicyDocument(
            SYNTAX_ERRORS,
            f"Statement must be an object or a list of objects, got {_type_name(raw_statements)}.")
    if not raw_statements:
        raise MalformedPolicyDocument(SYNTAX_ERRORS, "Statement is an empty list.")
    variables_enabled = version == VERSION_2012
    statements = tuple(_parse_statement(raw, index, kind, variables_enabled)
                       for index, raw in enumerate(raw_statements))
    _check_sids_unique(statements)
    return PolicyDocument(version, policy_id, statements, kind, text)


def _parse_statement(raw: object, index: int, kind: PolicyKind, variables_enabled: bool) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise MalformedPolicyDocument(SYNTAX_ERRORS, f"{where} must be an object, got {_type_name(raw)}.")
    for element in raw:
        if element not in _STATEMENT_ELEMENTS:
            raise MalformedPolicyDocument(
                SYNTAX_ERRORS, f"{where} has an unknown element {element!r}; a statement has "
                               f"{', '.join(_STATEMENT_ELEMENTS)}.")
    for positive, negative in (("Action", "NotAction"), ("Resource", "NotResource"),
                               ("Principal", "NotPrincipal")):
        if positive in raw and negative in raw:
            raise MalformedPolicyDocument(SYNTAX_ERRORS,
                                          f"{where} has both {positive} and {negative}; use one.")
    return Statement(
        index=index,
        sid=_parse_sid(raw, where, kind),
        effect=_parse_effect(raw, where),
        actions=_parse_actions(raw, where),
        resources=_parse_resources(raw, where, kind, variables_enabled),
        principals=_parse_principals(raw, where, kind),
        conditions=_parse_conditions(raw.get("Condition"), where, variables_enabled),
    )


def _parse_sid(raw: dict[str, Any], where: str, kind: PolicyKind) -> str | None:
    if "Sid" not in raw:
        return None
    sid = raw["Sid"]
    if not isinstance(sid, str):
        raise MalformedPolicyDocument(SYNTAX_ERRORS, f"{where}.Sid must be a string, got {_type_name(sid)}.")
    if kind is not PolicyKind.RESOURCE and not _SID.match(sid):
        raise MalformedPolicyDocument(SID_NOT_ALPHANUMERIC, f"{where}.Sid is {sid!r}.")
    return sid


def _check_sids_unique(statements: Iterable[Statement]) -> None:
    seen: set[str] = set()
    for statement in statements:
        if statement.sid:
            if statement.sid in seen:
                raise MalformedPolicyDocument(
                    SID_NOT_UNIQUE, f"Statement[{statement.index}].Sid {statement.sid!r} is already used.")
            seen.add(statement.sid)


def _parse_effect(raw: dict[str, Any], where: str) -> Effect:
    if "Effect" not in raw:
        raise MalformedPolicyDocument(SYNTAX_ERRORS, f'{where} has no Effect; expected "Allow" or "Deny".')
    effect = raw["Effect"]
    for candidate in Effect:
        if effect == candidate.value:
            return candidate
    # AWS parses "allow" but refuses it later, with a different sentence.
    aws_message = LEGACY_PARSING if isinstance(effect, str) and effect.lower() in ("allow", "deny") \
        else SYNTAX_ERRORS
    shown = repr(effect) if isinstance(effect, str) else _type_name(effect)
    raise MalformedPolicyDocument(aws_message, f'{where}.Effect must be "Allow" or "Deny", got {shown}.')


def _string_list(raw: dict[str, Any], element: str, where: str) -> tuple[str, ...]:
    value = raw[element]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise MalformedPolicyDocument(
            SYNTAX_ERRORS,
            f"{where}.{element} must be a string or a list of strings, got {_type_name(value)}.")
    return tuple(values)


def _parse_actions(raw: dict[str, Any], where: str) -> ActionClause:
    element = "Action" if "Action" in raw else "NotAction" if "NotAction" in raw else None
    if element is None:
        raise MalformedPolicyDocument(NO_ACTIONS, f"{where} has neither Action nor NotAction.")
    patterns = _string_list(raw, element, where)
    if not patterns:
        raise MalformedPolicyDocument(NO_ACTIONS, f"{where}.{element} is an empty list.")
    for pattern in patterns:
        if pattern == "*":
            continue
        parts = pattern.split(":")
        if len(parts) == 1:
            raise MalformedPolicyDocument(NO_VENDOR, f"{where}.{element} {pattern!r} has no service prefix.")
        if len(parts) > 2:
            raise MalformedPolicyDocument(ONE_COLON, f"{where}.{element} is {pattern!r}.")
        if not _VENDOR.match(parts[0]):
            raise MalformedPolicyDocument(
                f"Vendor {parts[0]} is not valid",
                f"{where}.{element} {pattern!r}: a service prefix is letters, digits, '-' and '.', without "
                "wildcards.")
    return ActionClause(patterns, negated=element == "NotAction")


def _parse_resources(raw: dict[str, Any], where: str, kind: PolicyKind, variables_enabled: bool
                     ) -> ResourceClause | None:
    element = "Resource" if "Resource" in raw else "NotResource" if "NotResource" in raw else None
    if kind is PolicyKind.TRUST:
        if element is not None:
            raise MalformedPolicyDocument(
                f"Has prohibited field {element}",
                f"{where}: a trust policy applies to its role, not to resources.")
        return None
    if element is None:
        raise MalformedPolicyDocument(NO_RESOURCES, f"{where} has neither Resource nor NotResource.")
    patterns = _string_list(raw, element, where)
    if not patterns:
        raise MalformedPolicyDocument(NO_RESOURCES, f"{where}.{element} is an empty list.")
    for pattern in patterns:
        _check_resource_pattern(pattern, f"{where}.{element}")
    return ResourceClause(patterns, negated=element == "NotResource", variables_enabled=variables_enabled)


def _check_resource_pattern(pattern: str, where: str) -> None:
    if pattern == "*":
        return
    parts = pattern.split(":", 5)
    if len(parts) < 3 or parts[0] != "arn":
        raise MalformedPolicyDocument(f'Resource {pattern} must be in ARN format or "*".',
                                      f"{where}: expected arn:partition:service:region:account:resource.")
    if not _PARTITION.match(parts[1]):
        raise MalformedPolicyDocument(f'Partition "{parts[1]}" is not valid for resource "{pattern}".',
                                      f"{where}: partitions are aws, aws-cn, aws-us-gov, ...")
    if not parts[2] or has_wildcard(parts[2]):
        raise MalformedPolicyDocument(RESOURCE_VENDOR, f"{where} {pattern!r} names no exact service.")


def _parse_principals(raw: dict[str, Any], where: str, kind: PolicyKind) -> PrincipalClause | None:
    element = "Principal" if "Principal" in raw else "NotPrincipal" if "NotPrincipal" in raw else None
    if kind is PolicyKind.IDENTITY:
        if element is not None:
            raise MalformedPolicyDocument(
                PRINCIPAL_IN_IDENTITY_POLICY,
                f"{where} has {element}; an identity policy applies to the identity it is attached to.")
        return None
    if element is None:
        raise MalformedPolicyDocument(MISSING_PRINCIPAL, f"{where} has neither Principal nor NotPrincipal.")
    value = raw[element]
    negated = element == "NotPrincipal"
    if value == "*":
        return PrincipalClause(everyone=True, negated=negated)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicyDocument(
            SYNTAX_ERRORS, f'{where}.{element} must be "*" or an object such as {{"AWS": "<arn>"}}, got '
                           f"{_type_name(value)}.")
    found: dict[str, set[str]] = {name: set() for name in _PRINCIPAL_TYPES}
    for principal_type, entries in value.items():
        if principal_type not in _PRINCIPAL_TYPES:
            shown = json.dumps({principal_type: entries}, separators=(",", ":"))[1:-1]
            raise MalformedPolicyDocument(
                f"Invalid principal in policy: {shown}",
                f"{where}.{element}: principal types are {', '.join(_PRINCIPAL_TYPES)}.")
        listed = [entries] if isinstance(entries, str) else entries
        if not isinstance(listed, list) or not listed or not all(isinstance(e, str) for e in listed):
            raise MalformedPolicyDocument(
                SYNTAX_ERRORS, f"{where}.{element}.{principal_type} must be a string or a non-empty list of "
                               f"strings, got {_type_name(entries)}.")
        for entry in listed:
            found[principal_type].add(_principal_entry(principal_type, entry, f"{where}.{element}"))
    everyone = "*" in found["AWS"]
    return PrincipalClause(
        everyone=everyone, aws=frozenset(found["AWS"] - {"*"}),
        services=frozenset(s.lower() for s in found["Service"]), federated=frozenset(found["Federated"]),
        canonical_users=frozenset(found["CanonicalUser"]), negated=negated)


def _principal_entry(principal_type: str, entry: str, where: str) -> str:
    invalid = MalformedPolicyDocument(f'Invalid principal in policy: "{principal_type}":"{entry}"',
                                      f"{where}: {_PRINCIPAL_HINTS[principal_type]}")
    if principal_type == "AWS":
        if entry == "*" or _AWS_PRINCIPAL_ARN.match(entry) and "*" not in entry and "?" not in entry:
            return entry
        if _ACCOUNT_ID.match(entry):
            return f"arn:aws:iam::{entry}:root"
        raise invalid
    if not entry.strip() or has_wildcard(entry):
        raise invalid
    return entry


_PRINCIPAL_HINTS = {
    "AWS": "expected \"*\", a 12-digit account id or the ARN of an account, user, role or session, "
           "without wildcards.",
    "Service": "expected a service principal such as sagemaker.amazonaws.com, without wildcards.",
    "Federated": "expected an identity provider, without wildcards.",
    "CanonicalUser": "expected a canonical user id, without wildcards.",
}


def _condition_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _parse_conditions(raw: object, where: str, variables_enabled: bool) -> tuple[ConditionClause, ...]:
    if raw is None:
        return ()
    where = f"{where}.Condition"
    if not isinstance(raw, dict):
        raise MalformedPolicyDocument(SYNTAX_ERRORS, f"{where} must be an object, got {_type_name(raw)}.")
    clauses = []
    for operator_name, body in raw.items():
        op = parse_operator(operator_name)
        if op is None:
            raise MalformedPolicyDocument(SYNTAX_ERRORS, f"{where} has an unknown condition operator "
                                                         f"{operator_name!r}.")
        if not isinstance(body, dict):
            raise MalformedPolicyDocument(
                SYNTAX_ERRORS, f"{where}.{operator_name} must be an object of condition keys, got "
                               f"{_type_name(body)}.")
        for key, value in body.items():
            at = f"{where}.{operator_name}[{key!r}]"
            if not key:
                raise MalformedPolicyDocument(SYNTAX_ERRORS,
                                              f"{where}.{operator_name} has an empty condition key.")
            listed = value if isinstance(value, list) else [value]
            texts = [_condition_text(v) for v in listed]
            if not listed or any(t is None for t in texts):
                raise MalformedPolicyDocument(
                    SYNTAX_ERRORS,
                    f"{at} must be a string, number or boolean, or a non-empty list of them, got "
                    f"{_type_name(value)}.")
            try:
                clauses.append(ConditionClause.build(op, key, [t for t in texts if t is not None],
                                                     variables_enabled))
            except ValueError as error:
                raise MalformedPolicyDocument(LEGACY_PARSING, f"{at}: {error}.") from None
    return tuple(clauses)
