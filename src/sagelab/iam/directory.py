"""The IAM directory: users, groups, roles, managed policies, inline policies and access keys.

Every entity is a row of the resource store (kind `iam-user`, `iam-group`, `iam-role`, `iam-policy`,
`iam-access-key`), so a restart keeps them. An entity's document is what Get* answers, plus private fields:
`_Inline` (inline policy name -> its JSON text), `_Attached` (managed policy ARNs), a user's `_Groups`, an
access key's `_Secret`. Secrets are kept as they are, since verifying a SigV4 signature needs the secret
itself (an HMAC key, not a password hash); the metadata database lives in the home folder, which is 0700.

Policy texts are parsed once when they are written (a malformed one is refused with AWS's message) and
again when the authorizer builds a principal's policy set. Every change calls the listeners given to
`subscribe`, so the authorizer can drop what it cached.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import time
from collections.abc import Callable, Iterable
from typing import Any

from sagelab.account import Account
from sagelab.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidIamInput,
    LimitExceeded,
    NoSuchEntity,
)
from sagelab.security.policy_document import PolicyDocument, PolicyKind, parse_policy
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

USER, GROUP, ROLE, POLICY, ACCESS_KEY = "iam-user", "iam-group", "iam-role", "iam-policy", "iam-access-key"
#: What IAM calls each kind in its messages, and the prefix of the unique ids it gives them.
_NOUNS = {USER: "user", GROUP: "group", ROLE: "role"}
_ID_PREFIXES = {USER: "AIDA", GROUP: "AGPA", ROLE: "AROA", POLICY: "ANPA"}
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
ACCESS_KEYS_PER_USER = 2
DEFAULT_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
#: The version id of a managed policy's first (and, in sagelab, only) version.
FIRST_VERSION = "v1"


def new_id(prefix: str, length: int = 17) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


@dataclasses.dataclass(frozen=True)
class NamedPolicy:
    """One policy bearing on a principal: where it comes from (for SimulatePrincipalPolicy) and its document."""

    #: The policy's name (inline) or ARN (managed).
    policy_id: str
    #: SimulatePrincipalPolicy's SourcePolicyType: user, group, role (inline) or user-managed.
    source_type: str
    document: PolicyDocument

    @property
    def label(self) -> str:
        """Unique among one principal's policies: the name its PolicySet knows it by."""
        return f"{self.source_type}:{self.policy_id}"


def _path(params_path: str | None) -> str:
    path = params_path or "/"
    if not (path.startswith("/") and path.endswith("/")):
        raise InvalidIamInput(f"Path {path!r} must begin and end with '/'.")
    return path


class IamDirectory:
    def __init__(self, *, resources: ResourceStore, account: Account):
        self.resources = resources
        self.account = account
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def arn(self, resource: str) -> str:
        return f"arn:aws:iam::{self.account.id}:{resource}"

    # --- users, groups and roles ------------------------------------------------------------------------
    def _insert(self, kind: str, name: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        noun = _NOUNS[kind]
        arn = self.arn(f"{noun}{path}{name}")
        doc = {"Path": path, f"{noun.capitalize()}Name": name, f"{noun.capitalize()}Id": new_id(_ID_PREFIXES[kind]),
               "Arn": arn, "CreateDate": time.time(), **doc, "_Inline": {}, "_Attached": []}
        try:
            self.resources.insert(kind, name, arn, "", doc)
        except AlreadyExists:
            raise EntityAlreadyExists(f"{noun.capitalize()} with name {name} already exists.") from None
        self._changed()
        return public(doc)

    def _get(self, kind: str, name: str) -> Resource:
        found = self.resources.get(kind, name)
        if found is None:
            raise NoSuchEntity(f"The {_NOUNS[kind]} with name {name} cannot be found.")
        return found

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return public(self._get(kind, name).doc)

    def list(self, kind: str, path_prefix: str = "/") -> list[dict[str, Any]]:
        rows = self.resources.list(kind, sort_by="Name", descending=False)
        return [public(row.doc) for row in rows if row.doc.get("Path", "/").startswith(path_prefix or "/")]

    def create_user(self, name: str, path: str | None = None) -> dict[str, Any]:
        return self._insert(USER, name, _path(path), {"_Groups": []})

    def delete_user(self, name: str) -> None:
        user = self._get(USER, name).doc
        if self.access_keys(name):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        self._refuse_if_policies(user)
        if user["_Groups"]:
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        self.resources.delete(USER, name)
        self._changed()

    def create_group(self, name: str, path: str | None = None) -> dict[str, Any]:
        return self._insert(GROUP, name, _path(path), {})

    def group_members(self, group: str) -> list[dict[str, Any]]:
        self._get(GROUP, group)
        return [public(row.doc) for row in self.resources.list(USER, sort_by="Name", descending=False)
                if group in row.doc["_Groups"]]

    def add_user_to_group(self, group: str, user: str) -> None:
        self._get(GROUP, group)
        self._mutate(USER, user, lambda doc: doc["_Groups"].append(group) if group not in doc["_Groups"] else None)

    def remove_user_from_group(self, group: str, user: str) -> None:
        self._get(GROUP, group)
        self._mutate(USER, user, lambda doc: doc["_Groups"].remove(group) if group in doc["_Groups"] else None)

    def groups_of(self, user: str) -> list[dict[str, Any]]:
        return [self.get(GROUP, group) for group in self._get(USER, user).doc["_Groups"]]

    def delete_group(self, name: str) -> None:
        group = self._get(GROUP, name).doc
        if self.group_members(name):
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        self._refuse_if_policies(group)
        self.resources.delete(GROUP, name)
        self._changed()

    def create_role(self, name: str, trust_policy: str, *, path: str | None = None, description: str = "",
                    max_session_duration: int | None = None) -> dict[str, Any]:
        parse_policy(trust_policy, PolicyKind.TRUST)
        duration = DEFAULT_SESSION_DURATION if max_session_duration is None else max_session_duration
        if not DEFAULT_SESSION_DURATION <= duration <= MAX_SESSION_DURATION:
            raise InvalidIamInput(f"MaxSessionDuration must be between {DEFAULT_SESSION_DURATION} and "
                                  f"{MAX_SESSION_DURATION} seconds; got {duration}.")
        doc: dict[str, Any] = {"AssumeRolePolicyDocument": trust_policy, "MaxSessionDuration": duration}
        if description:
            doc["Description"] = description
        return self._insert(ROLE, name, _path(path), doc)

    def role_by_arn(self, arn: str) -> dict[str, Any] | None:
        """The role an ARN names, or None when sagelab has no such role (any well-formed ARN may be passed)."""
        found = self.resources.get_by_arn(arn)
        return found.doc if found is not None and found.kind == ROLE else None

    def delete_role(self, name: str) -> None:
        self._refuse_if_policies(self._get(ROLE, name).doc)
        self.resources.delete(ROLE, name)
        self._changed()

    @staticmethod
    def _refuse_if_policies(doc: dict[str, Any]) -> None:
        if doc["_Attached"]:
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if doc["_Inline"]:
            raise DeleteConflict("Cannot delete entity, must delete policies first.")

    def _mutate(self, kind: str, name: str, change: Callable[[dict[str, Any]], Any]) -> None:
        self._get(kind, name)
        self.resources.update(kind, name, lambda res: change(res.doc))
        self._changed()

    # --- inline policies ----------------------------------------------------------------------------------
    def put_inline_policy(self, kind: str, owner: str, policy_name: str, document: str) -> None:
        parse_policy(document, PolicyKind.IDENTITY)
        self._mutate(kind, owner, lambda doc: doc["_Inline"].__setitem__(policy_name, document))

    def inline_policy(self, kind: str, owner: str, policy_name: str) -> str:
        text = self._get(kind, owner).doc["_Inline"].get(policy_name)
        if text is None:
            raise NoSuchEntity(f"The {_NOUNS[kind]} policy with name {policy_name} cannot be found.")
        return text

    def inline_policy_names(self, kind: str, owner: str) -> list[str]:
        return sorted(self._get(kind, owner).doc["_Inline"])

    def delete_inline_policy(self, kind: str, owner: str, policy_name: str) -> None:
        self.inline_policy(kind, owner, policy_name)
        self._mutate(kind, owner, lambda doc: doc["_Inline"].pop(policy_name))

    # --- managed policies ---------------------------------------------------------------------------------
    def create_policy(self, name: str, document: str, *, path: str | None = None,
                      description: str = "") -> dict[str, Any]:
        parse_policy(document, PolicyKind.IDENTITY)
        path = _path(path)
        arn = self.arn(f"policy{path}{name}")
        now = time.time()
        doc: dict[str, Any] = {"PolicyName": name, "PolicyId": new_id(_ID_PREFIXES[POLICY]), "Arn": arn,
                               "Path": path, "DefaultVersionId": FIRST_VERSION, "IsAttachable": True,
                               "CreateDate": now, "UpdateDate": now,
                               "_Versions": {FIRST_VERSION: {"Document": document, "CreateDate": now}}}
        if description:
            doc["Description"] = description
        try:
            self.resources.insert(POLICY, name, arn, "", doc)
        except AlreadyExists:
            raise EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not "
                                      "allowed.") from None
        return self._with_count(doc)

    def _policy(self, arn: str) -> Resource:
        found = self.resources.get_by_arn(arn)
        if found is None or found.kind != POLICY:
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        return found

    def _attached_everywhere(self) -> Iterable[tuple[str, Resource]]:
        for kind in (USER, GROUP, ROLE):
            for row in self.resources.list(kind):
                for arn in row.doc["_Attached"]:
                    yield arn, row

    def _with_count(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = public(doc)
        out["AttachmentCount"] = sum(1 for arn, _ in self._attached_everywhere() if arn == doc["Arn"])
        return out

    def get_policy(self, arn: str) -> dict[str, Any]:
        return self._with_count(self._policy(arn).doc)

    def policy_version(self, arn: str, version_id: str) -> dict[str, Any]:
        policy = self._policy(arn).doc
        version = policy["_Versions"].get(version_id)
        if version is None:
            raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
        return {"Document": version["Document"], "VersionId": version_id, "CreateDate": version["CreateDate"],
                "IsDefaultVersion": version_id == policy["DefaultVersionId"]}

    def list_policies(self, *, path_prefix: str = "/", only_attached: bool = False) -> list[dict[str, Any]]:
        policies = [self._with_count(row.doc) for row in self.resources.list(POLICY, sort_by="Name",
                                                                              descending=False)]
        return [p for p in policies if p["Path"].startswith(path_prefix or "/")
                and (p["AttachmentCount"] or not only_attached)]

    def delete_policy(self, arn: str) -> None:
        policy = self._policy(arn)
        if any(attached == arn for attached, _ in self._attached_everywhere()):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        self.resources.delete(POLICY, policy.name)
        self._changed()

    def attach_policy(self, kind: str, owner: str, arn: str) -> None:
        self._policy(arn)
        self._mutate(kind, owner, lambda doc: doc["_Attached"].append(arn) if arn not in doc["_Attached"] else None)

    def detach_policy(self, kind: str, owner: str, arn: str) -> None:
        if arn not in self._get(kind, owner).doc["_Attached"]:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        self._mutate(kind, owner, lambda doc: doc["_Attached"].remove(arn))

    def attached_policies(self, kind: str, owner: str) -> list[dict[str, str]]:
        out = []
        for arn in self._get(kind, owner).doc["_Attached"]:
            found = self.resources.get_by_arn(arn)
            if found is not None:
                out.append({"PolicyName": found.name, "PolicyArn": arn})
        return out

    # --- what bears on a principal's requests ---------------------------------------------------------------
    def _policies_of(self, doc: dict[str, Any], source_type: str) -> list[NamedPolicy]:
        out = [NamedPolicy(name, source_type, parse_policy(text)) for name, text in sorted(doc["_Inline"].items())]
        for arn in doc["_Attached"]:
            found = self.resources.get_by_arn(arn)
            if found is not None:
                text = found.doc["_Versions"][found.doc["DefaultVersionId"]]["Document"]
                out.append(NamedPolicy(arn, "user-managed", parse_policy(text)))
        return out

    def user_policies(self, name: str) -> list[NamedPolicy]:
        """The user's own policies and those of every group it belongs to."""
        user = self._get(USER, name).doc
        policies = self._policies_of(user, "user")
        for group in user["_Groups"]:
            found = self.resources.get(GROUP, group)
            if found is not None:
                policies += self._policies_of(found.doc, "group")
        return policies

    def role_policies(self, name: str) -> list[NamedPolicy]:
        return self._policies_of(self._get(ROLE, name).doc, "role")

    # --- access keys ----------------------------------------------------------------------------------------
    def create_access_key(self, user: str) -> dict[str, Any]:
        self._get(USER, user)
        if len(self.access_keys(user)) >= ACCESS_KEYS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")
        akid = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        doc = {"UserName": user, "AccessKeyId": akid, "Status": "Active", "CreateDate": time.time(),
               "_Secret": new_secret()}
        self.resources.insert(ACCESS_KEY, akid, self.arn(f"access-key/{akid}"), "Active", doc)
        self._changed()
        return {**public(doc), "SecretAccessKey": doc["_Secret"]}

    def access_keys(self, user: str) -> list[dict[str, Any]]:
        self._get(USER, user)
        rows = self.resources.list(ACCESS_KEY, sort_by="CreationTime", descending=False)
        return [public(row.doc) for row in rows if row.doc["UserName"] == user]

    def access_key(self, akid: str) -> dict[str, Any] | None:
        """The key with its `_Secret`, or None."""
        found = self.resources.get(ACCESS_KEY, akid)
        return found.doc if found is not None else None

    def delete_access_key(self, user: str, akid: str) -> None:
        found = self.resources.get(ACCESS_KEY, akid)
        if found is None or found.doc["UserName"] != user:
            raise NoSuchEntity(f"The Access Key with id {akid} cannot be found.")
        self.resources.delete(ACCESS_KEY, akid)
        self._changed()
