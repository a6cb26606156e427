"""The authorizer: who signed a call, and whether their policies let them make it.

`caller(access key id, session token)` names the principal behind a verified signature: the root user,
an IAM user (by one of its access keys), or an STS session (the token must be that session's, and
unexpired). `decide(caller, action, resource, keys)` evaluates the caller's identity policies (a user's own
and its groups', or a role's) together with the resource's policy where the resource has one: an S3 bucket
policy for S3 resources, the role's trust policy for sts:AssumeRole. `authorize` raises AccessDenied with
AWS's message. SimulatePrincipalPolicy asks `decide` too, so it answers exactly what enforcement does.

The root user may do anything, as in AWS, except what an explicit Deny in a bucket policy refuses (AWS
applies those to root as well); root may always read, replace and delete a bucket policy, so that it can
never lock itself out. Root may not assume roles (AWS refuses that too).

Secrets, callers and compiled policy sets are cached, and so are decisions (`DecisionCache`); a change to any
identity, policy, attachment, group membership, access key or bucket policy drops the caches.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sagelab.account import Account
from sagelab.errors import AccessDenied, ExpiredSessionToken, InvalidSessionToken
from sagelab.iam import principals
from sagelab.iam.directory import ROLE, USER, IamDirectory, NamedPolicy
from sagelab.iam.errors import NoSuchEntity
from sagelab.iam.principals import Caller, CallerKind
from sagelab.iam.sessions import Session, SessionStore
from sagelab.lake.bucket_policies import BucketPolicies
from sagelab.security.policy_document import PolicyDocument, PolicyKind, parse_policy
from sagelab.security.policy_evaluation import (
    Decision,
    DecisionCache,
    EvalDecision,
    PolicySet,
    RequestContext,
    denial_message,
)

#: Condition keys of a request, or a function that makes them when they are needed.
Keys = Mapping[str, object] | Callable[[], Mapping[str, object]] | None

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
ROOT_CANNOT_ASSUME = "Roles may not be assumed by root accounts."
_S3_ARN = "arn:aws:s3:::"
#: Bound on remembered key-free decisions; past it they are forgotten at once and remembered anew.
_KEYLESS_DECISIONS = 10_000
_ASSUME_ROLE = "sts:assumerole"
#: What root may always do to a bucket policy, whatever the policy says.
_ROOT_POLICY_ACTIONS = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"})


def bucket_of(resource: str) -> str | None:
    if not resource.startswith(_S3_ARN):
        return None
    bucket = resource[len(_S3_ARN):].split("/", 1)[0]
    return bucket if bucket and "*" not in bucket else None


class Authorizer:
    def __init__(self, *, directory: IamDirectory, sessions: SessionStore, bucket_policies: BucketPolicies,
                 account: Account, root_access_key_id: str = ""):
        self.directory = directory
        self.sessions = sessions
        self.bucket_policies = bucket_policies
        self.account = account
        self.root_access_key_id = root_access_key_id
        self.decisions = DecisionCache()
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        self._callers: dict[str, Caller] = {}
        self._issued: dict[str, Session] = {}
        #: (caller ARN, action, resource) -> the decision, for policy sets that read no condition key.
        self._keyless: dict[tuple[str, str, str], Decision] = {}
        #: Bumped by every change: what was worked out from the state before it is not cached after it.
        self._generation = 0
        self._policy_sets: dict[tuple[Any, ...], PolicySet] = {}
        self._policy_labels: dict[tuple[CallerKind, str], dict[str, NamedPolicy]] = {}
        directory.subscribe(self.invalidate)
        bucket_policies.subscribe(self.invalidate)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._secrets.clear()
            self._callers.clear()
            self._policy_sets.clear()
            self._policy_labels.clear()
            self._keyless.clear()
        self.decisions.clear()

    # --- who signed -----------------------------------------------------------------------------------
    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active IAM access key or of an STS session (expired ones too: see `caller`)."""
        secret = self._secrets.get(access_key_id)
        if secret is not None:
            return secret
        session = self._session(access_key_id)
        if session is not None:
            secret = session.secret_access_key
        else:
            key = self.directory.access_key(access_key_id)
            secret = key["_Secret"] if key is not None and key["Status"] == "Active" else None
        if secret is not None:
            with self._lock:
                self._secrets[access_key_id] = secret
        return secret

    def caller(self, access_key_id: str, session_token: str | None = None) -> Caller:
        """The principal behind a signature the verifier accepted for this key."""
        if access_key_id == self.root_access_key_id and self.root_access_key_id:
            if session_token:
                raise InvalidSessionToken(INVALID_TOKEN)
            return principals.root(self.account.id)
        if access_key_id.startswith("ASIA"):
            return self._session_caller(access_key_id, session_token)
        if session_token:  # a long-term key never carries a token
            raise InvalidSessionToken(INVALID_TOKEN)
        cached = self._callers.get(access_key_id)
        if cached is not None:
            return cached
        key = self.directory.access_key(access_key_id)
        if key is None:
            raise InvalidSessionToken(INVALID_TOKEN)
        caller = principals.user(self.account.id, self.directory.get(USER, key["UserName"]))
        with self._lock:
            self._callers[access_key_id] = caller
        return caller

    def _session(self, access_key_id: str) -> Session | None:
        # A session never changes once issued: it is read from the store once.
        session = self._issued.get(access_key_id)
        if session is None:
            session = self.sessions.get(access_key_id)
            if session is not None:
                with self._lock:
                    self._issued[access_key_id] = session
        return session

    def _session_caller(self, access_key_id: str, session_token: str | None) -> Caller:
        session = self._session(access_key_id)
        if session is None or not session.token_matches(session_token):
            raise InvalidSessionToken(INVALID_TOKEN)
        if session.expired():
            raise ExpiredSessionToken(EXPIRED_TOKEN)
        cached = self._callers.get(access_key_id)
        if cached is not None:
            return cached
        if session.role_arn:
            role = self.directory.role_by_arn(session.role_arn)
            if role is None:  # the role was deleted: its sessions act with no permission, as in AWS
                role = {"RoleName": session.role_arn.rsplit("/", 1)[-1], "RoleId": session.role_id,
                        "Arn": session.role_arn}
            caller = principals.role_session(self.account.id, role, session.session_name)
        elif session.user_name:
            try:
                caller = principals.user(self.account.id, self.directory.get(USER, session.user_name),
                                         temporary=True)
            except NoSuchEntity:  # the user was deleted: its sessions end with it
                raise InvalidSessionToken(INVALID_TOKEN) from None
        else:
            caller = dataclasses.replace(principals.root(self.account.id), temporary=True)
        with self._lock:
            self._callers[access_key_id] = caller
        return caller

    def caller_for_arn(self, arn: str) -> Caller | None:
        """The principal an IAM user or role ARN names (a role as one of its sessions), or None."""
        found = self.directory.resources.get_by_arn(arn)
        if found is None or found.kind not in (USER, ROLE):
            return None
        if found.kind == USER:
            return principals.user(self.account.id, found.doc)
        return principals.role_session(self.account.id, found.doc, "sagelab")

    # --- what they may do -----------------------------------------------------------------------------
    def identity_policies(self, caller: Caller) -> dict[str, NamedPolicy]:
        """The caller's identity policies by the label their PolicySet knows them by."""
        owner = caller.policy_owner
        cached = self._policy_labels.get(owner)
        if cached is not None:
            return cached
        generation = self._generation
        if caller.kind is CallerKind.USER:
            found = self.directory.user_policies(caller.name)
        elif self.directory.resources.get(ROLE, caller.name) is not None:
            found = self.directory.role_policies(caller.name)
        else:
            found = []
        labelled = {policy.label: policy for policy in found}
        with self._lock:
            if generation == self._generation:
                self._policy_labels[owner] = labelled
        return labelled

    def _resource_policy(self, action_lower: str, resource: str) -> tuple[str, PolicyDocument | None, bool] | None:
        """(name, document, whether it must grant) of the policy on the resource the action touches."""
        if action_lower == _ASSUME_ROLE:
            role = self.directory.role_by_arn(resource)
            trust = parse_policy(role["AssumeRolePolicyDocument"], PolicyKind.TRUST) if role else None
            return f"trust:{resource}", trust, True
        bucket = bucket_of(resource) if action_lower.startswith("s3:") else None
        if bucket is not None:
            document = self.bucket_policies.document(bucket)
            if document is not None:
                return f"bucket:{bucket}", document, False
        return None

    def _policy_set(self, caller: Caller, action_lower: str, resource: str) -> PolicySet:
        resource_policy = None
        key: tuple[Any, ...] = (caller.policy_owner,)
        if action_lower == _ASSUME_ROLE or action_lower.startswith("s3:"):
            found = self._resource_policy(action_lower, resource)
            if found is not None:
                key += (found[0],)
                resource_policy = found
        cached = self._policy_sets.get(key)
        if cached is not None:
            return cached
        generation = self._generation
        identity = () if caller.is_root else tuple(
            (label, policy.document) for label, policy in self.identity_policies(caller).items())
        if resource_policy is None:
            policy_set = PolicySet(identity)
        else:
            name, document, must_grant = resource_policy
            policy_set = PolicySet(identity, document, resource_policy_name=name,
                                   require_resource_grant=must_grant)
        with self._lock:
            if generation == self._generation:
                self._policy_sets[key] = policy_set
        return policy_set

    def decide(self, caller: Caller, action: str, resource: str, keys: Keys = None
               ) -> tuple[RequestContext, Decision]:
        """The decision on one access, with the request as the evaluator saw it; `keys` are the request's
        condition keys, or a function making them (called only when a policy that bears on it reads a key)."""
        decision, context = self._decide(caller, action, resource, keys)
        return context or RequestContext(action, resource, caller.arn), decision

    def _decide(self, caller: Caller, action: str, resource: str, keys: Keys
                ) -> tuple[Decision, RequestContext | None]:
        fast_key = (caller.arn, action, resource)
        known = self._keyless.get(fast_key)
        if known is not None:
            return known, None
        generation = self._generation
        action_lower = action.lower()
        if caller.is_root:
            if action_lower == _ASSUME_ROLE:
                return Decision(EvalDecision.IMPLICIT_DENY), None
            if not action_lower.startswith("s3:") or action_lower in _ROOT_POLICY_ACTIONS:
                return Decision(EvalDecision.ALLOWED), None
        policy_set = self._policy_set(caller, action_lower, resource)
        context = RequestContext(action, resource, caller.arn, keys=self._keys(caller, policy_set, keys))
        decision = self.decisions.evaluate(policy_set, context)
        if caller.is_root and decision.decision is not EvalDecision.EXPLICIT_DENY:
            decision = Decision(EvalDecision.ALLOWED)  # only a bucket policy's Deny holds root
        if not policy_set.relevant_keys:
            # No condition key can change it: the next identical request skips the evaluator altogether.
            with self._lock:
                if len(self._keyless) >= _KEYLESS_DECISIONS:
                    self._keyless.clear()
                if generation == self._generation:
                    self._keyless[fast_key] = decision
        return decision, context

    @staticmethod
    def _keys(caller: Caller, policy_set: PolicySet, keys: Keys) -> dict[str, object]:
        # Most policies read no condition key: building the keys is then the most of a decision's cost.
        if not policy_set.relevant_keys:
            return {}
        given = keys() if callable(keys) else keys
        return {**caller.condition_keys(), **(given or {})}

    def authorize(self, caller: Caller, action: str, resource: str, keys: Keys = None,
                  *, quote_resource: bool = False) -> None:
        decision, _ = self._decide(caller, action, resource, keys)
        if decision.allowed:
            return
        if caller.is_root and action.lower() == _ASSUME_ROLE:
            raise AccessDenied(ROOT_CANNOT_ASSUME)
        context = RequestContext(action, resource, caller.arn)  # the message names no condition key
        raise AccessDenied(denial_message(context, decision, quote_resource=quote_resource))
