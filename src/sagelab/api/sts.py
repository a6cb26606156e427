"""AWS STS (query protocol): who the caller is, and temporary credentials (AssumeRole, GetSessionToken).

AssumeRole reaches its handler only once the enforcer has checked the role's trust policy (with the caller's
own policies, as AWS does), so the handler issues the session. Sessions act with the role's permissions;
GetSessionToken's act with the user's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.operations import STS, Call, OperationTable
from sagelab.api.query_protocol import QueryService
from sagelab.errors import AccessDenied, SagelabError, ValidationError
from sagelab.iam import principals, sessions
from sagelab.iam.principals import Caller

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = STS.op


class StsValidationError(SagelabError):
    """STS spells bad input `ValidationError`."""

    code = "ValidationError"


class StsFace:
    protocol = "query"

    def __init__(self, platform: Platform):
        self.platform = platform

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def _caller(self, request: Request) -> Caller:
        if request.principal is None:  # auth is off: every call is the root user's
            return principals.root(self.platform.account_id)
        return self.platform.authorizer.caller(request.principal.access_key_id,
                                               request.headers.get("x-amz-security-token"))

    def get_caller_identity(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        caller = self._caller(request)
        # The root user's UserId is the account id itself, and its ARN names no user.
        return {"UserId": caller.user_id, "Account": caller.account, "Arn": caller.arn}

    def get_access_key_info(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        if self.platform.lookup_secret(params["AccessKeyId"]) is None:
            raise ValidationError(f"AccessKeyId {params['AccessKeyId']!r} is not a key of this sagelab server.")
        return {"Account": self.platform.account_id}

    def assume_role(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        unapplied = [name for name in ("Policy", "PolicyArns", "SerialNumber", "TokenCode") if name in params]
        if unapplied:  # a session policy only narrows a session: ignoring it would grant more than asked
            raise StsValidationError(f"sagelab does not apply {', '.join(unapplied)} to sessions yet; call "
                                     "AssumeRole without them (the session acts with the role's policies).")
        role = self.platform.iam.role_by_arn(params["RoleArn"])
        if role is None:
            raise AccessDenied(f"Role {params['RoleArn']} does not exist in this sagelab server.")
        duration = params.get("DurationSeconds", sessions.ASSUME_ROLE_DEFAULT)
        if duration > role["MaxSessionDuration"]:
            raise StsValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                                     f"role ({role['MaxSessionDuration']} seconds).")
        name = params["RoleSessionName"]
        session = self.platform.sessions.issue(duration, role_arn=role["Arn"], role_id=role["RoleId"],
                                               session_name=name)
        caller = principals.role_session(self.platform.account_id, role, name)
        return {"Credentials": session.credentials,
                "AssumedRoleUser": {"AssumedRoleId": caller.user_id, "Arn": caller.arn}}

    def get_session_token(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        caller = self._caller(request)
        if caller.temporary:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        longest = 3600 if caller.is_root else sessions.SESSION_TOKEN_MAX
        duration = params.get("DurationSeconds", min(sessions.SESSION_TOKEN_DEFAULT, longest))
        if duration > longest:
            raise StsValidationError(f"The requested DurationSeconds exceeds the {longest} seconds allowed for "
                                     f"{'the root user' if caller.is_root else 'an IAM user'}.")
        session = self.platform.sessions.issue(duration, user_name="" if caller.is_root else caller.name)
        return {"Credentials": session.credentials}

    operations = OperationTable("sts", STS, (
        # Needs no permission: a caller that every policy denies still learns who it is.
        op("GetCallerIdentity", get_caller_identity, read_only=True, always_allowed=True),
        op("GetAccessKeyInfo", get_access_key_info, read_only=True),
        # The enforcer checks sts:AssumeRole against the role's trust policy (the role is the resource).
        op("AssumeRole", assume_role, "{RoleArn}", read_only=True),
        # "No permissions are required for users to perform this operation" (STS API reference).
        op("GetSessionToken", get_session_token, read_only=True, always_allowed=True),
    ))
    wire = QueryService(operations)
