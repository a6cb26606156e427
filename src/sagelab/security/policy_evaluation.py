"""The policy evaluator: may this principal perform this action on this resource, given these policies?

It follows AWS's evaluation logic for requests within an account:

1. an applicable Deny statement in any policy (identity or resource) decides: explicitDeny;
2. otherwise an applicable Allow decides: allowed. Within one account an Allow in either the identity policies
   or the resource policy suffices; across accounts (`RequestContext.resource_account` differs from the
   principal's account) both must allow; a role's trust policy (`require_resource_grant=True`) must allow
   whatever the identity policies say;
3. otherwise: implicitDeny.

A statement applies when its Action/NotAction covers the action, its Resource/NotResource covers the resource,
every condition clause holds and, in a resource policy, its Principal/NotPrincipal names the caller. A
resource policy that names the caller's *account* (`"AWS": "123456789012"`) delegates to that account's
identity policies: its Allow grants nothing by itself (except to the account root), while its Deny applies to
every principal of the account.

`PolicySet` holds the compiled documents of one principal (and one resource); `DecisionCache` remembers its
decisions, keyed by the set's fingerprint and only the request facts its policies can look at.

Left to the caller: the root user's implicit full access, permissions boundaries, session policies and SCPs.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sagelab.security.policy_conditions import as_text
from sagelab.security.policy_document import Effect, PolicyDocument, PrincipalClause, Statement

__all__ = ["Decision", "DecisionCache", "EvalDecision", "NamedPolicies", "PolicySet", "PolicySource",
           "RequestContext", "StatementRef", "denial_message", "evaluate"]

#: Identity policies by name: a mapping, or (name, document) pairs.
NamedPolicies = Mapping[str, PolicyDocument] | Iterable[tuple[str, PolicyDocument]]


class EvalDecision(enum.StrEnum):
    """The spelling of IAM's SimulatePrincipalPolicy EvalDecision."""

    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitDeny"
    IMPLICIT_DENY = "implicitDeny"


class PolicySource(enum.Enum):
    IDENTITY = "identity"
    RESOURCE = "resource"


@dataclasses.dataclass(frozen=True)
class StatementRef:
    """Which statement of which policy decided; `policy` is the name the PolicySet was given."""

    policy: str
    source: PolicySource
    index: int
    sid: str | None


@dataclasses.dataclass(frozen=True)
class Decision:
    decision: EvalDecision
    #: explicitDeny: every applicable Deny; allowed: the Allow statements that granted; implicitDeny: none.
    matched_statements: tuple[StatementRef, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is EvalDecision.ALLOWED

    @property
    def matched_sids(self) -> tuple[str, ...]:
        return tuple(ref.sid for ref in self.matched_statements if ref.sid)


def _normalised_keys(keys: Mapping[str, object]) -> dict[str, tuple[Any, ...]]:
    """Lower-case keys (AWS compares them case-insensitively) to tuples of values; None and [] dropped."""
    out: dict[str, tuple[Any, ...]] = {}
    for key, value in keys.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            values = tuple(v for v in value if v is not None)
        else:
            values = (value,)
        if values:
            out[key.lower()] = out.get(key.lower(), ()) + values
    return out


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """One request, as the evaluator sees it.

    `principal_arn` is the caller's ARN (user, role session, account root); `service_principal` names a
    calling service (`sagemaker.amazonaws.com`) instead; both empty means anonymous. `keys` holds condition
    keys such as `aws:SourceIp`, `aws:username`, `aws:CurrentTime`, `s3:prefix`; a list value makes a
    multi-valued key (`sagemaker:InstanceTypes`). `resource_account` is the resource owner's account when it
    may differ from the caller's (None: the same account).
    """

    action: str
    resource: str = "*"
    principal_arn: str = ""
    service_principal: str = ""
    resource_account: str | None = None
    keys: Mapping[str, object] = dataclasses.field(default_factory=dict)
    _values: dict[str, tuple[Any, ...]] = dataclasses.field(init=False, repr=False, compare=False)
    _action_lower: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", _normalised_keys(self.keys))
        object.__setattr__(self, "_action_lower", self.action.lower())

    def values_of(self, key: str) -> tuple[Any, ...]:
        return self._values.get(key, ())

    def variable(self, key: str) -> str | None:
        values = self._values.get(key, ())
        return as_text(values[0]) if len(values) == 1 else None

    @property
    def principal_account(self) -> str | None:
        parts = self.principal_arn.split(":")
        return parts[4] if len(parts) > 5 and parts[4] else None

    @property
    def is_cross_account(self) -> bool:
        account = self.principal_account
        return self.resource_account is not None and account is not None and account != self.resource_account


class _PrincipalMatch(enum.Enum):
    NONE = 0
    DELEGATED = 1  # the statement names the caller's account, not the caller
    DIRECT = 2


def _session_role(arn: str) -> tuple[str, str] | None:
    """(account, role name) of an assumed-role session ARN, which a policy naming the role covers."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        names = parts[5].split("/")
        if len(names) >= 3:
            return parts[4], names[1]
    return None


def _names_role(entry: str, account: str, role: str) -> bool:
    parts = entry.split(":", 5)
    return (len(parts) == 6 and parts[2] == "iam" and parts[4] == account and parts[5].startswith("role/")
            and parts[5].rsplit("/", 1)[-1] == role)


def _names_caller(clause: PrincipalClause, request: RequestContext) -> _PrincipalMatch:
    if clause.everyone:
        return _PrincipalMatch.DIRECT
    if request.service_principal and request.service_principal.lower() in clause.services:
        return _PrincipalMatch.DIRECT
    arn = request.principal_arn
    if not arn:
        return _PrincipalMatch.NONE
    if arn in clause.aws:
        return _PrincipalMatch.DIRECT
    session = _session_role(arn)
    if session is not None and any(_names_role(entry, *session) for entry in clause.aws):
        return _PrincipalMatch.DIRECT
    parts = arn.split(":")
    if len(parts) > 5 and f"arn:{parts[1]}:iam::{parts[4]}:root" in clause.aws:
        return _PrincipalMatch.DELEGATED
    return _PrincipalMatch.NONE


def _principal_match(clause: PrincipalClause | None, request: RequestContext) -> _PrincipalMatch:
    if clause is None:
        return _PrincipalMatch.DIRECT
    named = _names_caller(clause, request)
    if clause.negated:
        return _PrincipalMatch.DIRECT if named is _PrincipalMatch.NONE else _PrincipalMatch.NONE
    return named


#: Requests name a few dozen services; the bound only keeps odd action names from growing the index.
_MAX_INDEXED_SERVICES = 256


def _service_of(action_lower: str) -> str:
    return action_lower.split(":", 1)[0]


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A statement with what a decision reports about it."""

    statement: Statement
    ref: StatementRef
    resource: bool  # from the resource policy: its principal must name the caller
    services: frozenset[str] | None = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", self.statement.actions.services)


def _applies(statement: Statement, request: RequestContext) -> bool:
    """Action, resource and conditions; the principal is checked by the caller, for resource policies only."""
    if not statement.actions.covers(request._action_lower):
        return False
    if statement.resources is not None and not statement.resources.covers(request.resource, request.variable):
        return False
    return all(clause.holds(request) for clause in statement.conditions)


class PolicySet:
    """The policies that bear on one principal's requests (and optionally one resource), ready to evaluate.

    `identity_policies` maps a name (a managed policy's ARN, an inline policy's name) to its document; names
    come back in `StatementRef.policy`. Immutable: build a new set when a policy changes, which also gives
    it a new fingerprint, so cached decisions of the old set are never reused.
    """

    __slots__ = ("_identity", "_resource", "_entries", "_by_service", "resource_policy_name",
                 "require_resource_grant", "fingerprint", "relevant_keys")

    def __init__(self, identity_policies: NamedPolicies = (), resource_policy: PolicyDocument | None = None,
                 *, resource_policy_name: str = "resource policy", require_resource_grant: bool = False):
        pairs = identity_policies.items() if isinstance(identity_policies, Mapping) else identity_policies
        self._identity: tuple[tuple[str, PolicyDocument], ...] = tuple(pairs)
        self._resource = resource_policy
        self.resource_policy_name = resource_policy_name
        #: True for role trust policies: the resource policy itself must allow.
        self.require_resource_grant = require_resource_grant
        digest = hashlib.sha256(repr(require_resource_grant).encode())
        for name, document in (*self._identity, (resource_policy_name, resource_policy)):
            if document is not None:
                for part in (name, document.kind.value, document.source):
                    digest.update(len(part.encode()).to_bytes(8, "big") + part.encode())
        self.fingerprint = digest.hexdigest()
        keys: set[str] = set()
        for document in (*(d for _, d in self._identity), resource_policy):
            if document is not None:
                keys |= document.referenced_keys
        #: The condition keys (lower-case) that can change a decision: a cache key needs no others.
        self.relevant_keys: tuple[str, ...] = tuple(sorted(keys))
        self._entries = tuple(self._all_entries())
        # Per service, the statements that may apply to its actions (those naming it, and those with Action
        # "*" or NotAction, which reach every service): a request looks at no statement about other services.
        self._by_service: dict[str, tuple[_Entry, ...]] = {}

    def _all_entries(self) -> Iterable[_Entry]:
        for name, document in self._identity:
            for statement in document.statements:
                ref = StatementRef(name, PolicySource.IDENTITY, statement.index, statement.sid)
                yield _Entry(statement, ref, resource=False)
        if self._resource is not None:
            for statement in self._resource.statements:
                ref = StatementRef(self.resource_policy_name, PolicySource.RESOURCE, statement.index,
                                   statement.sid)
                yield _Entry(statement, ref, resource=True)

    def _for_service(self, service: str) -> tuple[_Entry, ...]:
        candidates = self._by_service.get(service)
        if candidates is None:
            candidates = tuple(entry for entry in self._entries
                               if entry.services is None or service in entry.services)
            if len(self._by_service) < _MAX_INDEXED_SERVICES:  # a benign race: threads compute the same tuple
                self._by_service[service] = candidates
        return candidates

    def evaluate(self, request: RequestContext) -> Decision:
        denies: list[StatementRef] = []
        identity_allows: list[StatementRef] = []
        direct: list[StatementRef] = []
        delegated: list[StatementRef] = []
        for entry in self._for_service(_service_of(request._action_lower)):
            statement = entry.statement
            match = (_principal_match(statement.principals, request) if entry.resource
                     else _PrincipalMatch.DIRECT)
            if match is _PrincipalMatch.NONE or not _applies(statement, request):
                continue
            if statement.effect is Effect.DENY:
                denies.append(entry.ref)
            elif not entry.resource:
                identity_allows.append(entry.ref)
            else:
                (direct if match is _PrincipalMatch.DIRECT else delegated).append(entry.ref)
        if denies:
            return Decision(EvalDecision.EXPLICIT_DENY, tuple(denies))
        granted = self._granting(request, identity_allows, direct, delegated)
        if granted:
            return Decision(EvalDecision.ALLOWED, tuple(granted))
        return Decision(EvalDecision.IMPLICIT_DENY)

    def _granting(self, request: RequestContext, identity: list[StatementRef], direct: list[StatementRef],
                  delegated: list[StatementRef]) -> list[StatementRef]:
        """The Allow statements that grant the request together, or [] when they do not suffice."""
        if request.is_cross_account:
            return identity + direct + delegated if identity and (direct or delegated) else []
        if self.require_resource_grant:
            if direct:
                return direct + (identity + delegated if identity else [])
            return identity + delegated if identity and delegated else []
        if identity or direct:
            return identity + direct + (delegated if identity else [])
        return []

    def cache_key(self, request: RequestContext) -> tuple[Any, ...]:
        """Everything about the request that the decision can depend on."""
        return (self.fingerprint, request._action_lower, request.resource, request.principal_arn,
                request.service_principal.lower(), request.resource_account,
                tuple(request._values.get(key) for key in self.relevant_keys))


def evaluate(request: RequestContext, identity_policies: NamedPolicies = (),
             resource_policy: PolicyDocument | None = None, *, require_resource_grant: bool = False
             ) -> Decision:
    """One decision without building a PolicySet by hand; use a PolicySet (and a cache) on hot paths."""
    return PolicySet(identity_policies, resource_policy, require_resource_grant=require_resource_grant
                     ).evaluate(request)


class DecisionCache:
    """A bounded LRU of decisions, safe to share between threads.

    Keyed by PolicySet.cache_key, so a changed policy (a new PolicySet, a new fingerprint) never meets a stale
    decision, and condition keys that no policy reads (a request id, the time when no policy tests it) do not
    split the cache.
    """

    def __init__(self, maxsize: int = 10_000):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: collections.OrderedDict[tuple[Any, ...], Decision] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def evaluate(self, policies: PolicySet, request: RequestContext) -> Decision:
        key = policies.cache_key(request)
        try:
            hash(key)
        except TypeError:  # a condition value the caller passed cannot be a key (a dict): decide uncached
            return policies.evaluate(request)
        with self._lock:
            decision = self._entries.get(key)
            if decision is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return decision
            self.misses += 1
        decision = policies.evaluate(request)
        with self._lock:
            self._entries[key] = decision
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return decision

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def denial_message(request: RequestContext, decision: Decision, *, quote_resource: bool = False) -> str:
    """AWS's AccessDenied wording for a request that was not allowed; S3 quotes the resource."""
    who = request.principal_arn or request.service_principal or "anonymous"
    resource = f'"{request.resource}"' if quote_resource else request.resource
    head = (f"User: {who} is not authorized to perform: {request.action} on resource: {resource}")
    if decision.decision is EvalDecision.EXPLICIT_DENY:
        source = decision.matched_statements[0].source
        kind = "an identity-based" if source is PolicySource.IDENTITY else "a resource-based"
        return f"{head} with an explicit deny in {kind} policy"
    return f"{head} because no identity-based policy allows the {request.action} action"
