"""Who a call comes from: the account's root user, an IAM user, or a session of an assumed role."""

from __future__ import annotations

import dataclasses
import enum


class CallerKind(enum.Enum):
    ROOT = "Account"
    USER = "User"
    ASSUMED_ROLE = "AssumedRole"


@dataclasses.dataclass(frozen=True)
class Caller:
    kind: CallerKind
    #: The caller's ARN as GetCallerIdentity and AccessDenied messages name it.
    arn: str
    #: GetCallerIdentity's UserId: the account id (root), AIDA... (user), AROA...:session (role session).
    user_id: str
    account: str
    #: The user's name, or the assumed role's name.
    name: str = ""
    #: The role's ARN, for a role session (what `aws:PrincipalArn` and trust policies name).
    role_arn: str = ""
    #: Whether the call is signed with temporary credentials (GetSessionToken refuses those).
    temporary: bool = False

    @property
    def is_root(self) -> bool:
        return self.kind is CallerKind.ROOT

    @property
    def policy_owner(self) -> tuple[CallerKind, str]:
        """Whose identity policies apply: the same for a user and its sessions, for a role and its sessions."""
        return self.kind, self.name

    def condition_keys(self) -> dict[str, str]:
        """The global condition keys that describe the principal."""
        keys = {"aws:userid": self.user_id, "aws:PrincipalAccount": self.account,
                "aws:PrincipalArn": self.role_arn or self.arn, "aws:PrincipalType": self.kind.value}
        if self.kind is CallerKind.USER:
            keys["aws:username"] = self.name
        return keys


def root(account: str) -> Caller:
    return Caller(CallerKind.ROOT, f"arn:aws:iam::{account}:root", account, account)


def user(account: str, doc: dict[str, object], *, temporary: bool = False) -> Caller:
    return Caller(CallerKind.USER, str(doc["Arn"]), str(doc["UserId"]), account, str(doc["UserName"]),
                  temporary=temporary)


def role_session(account: str, role: dict[str, object], session_name: str) -> Caller:
    name = str(role["RoleName"])
    return Caller(CallerKind.ASSUMED_ROLE, f"arn:aws:sts::{account}:assumed-role/{name}/{session_name}",
                  f"{role['RoleId']}:{session_name}", account, name, role_arn=str(role["Arn"]), temporary=True)
