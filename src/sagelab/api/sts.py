"""AWS STS (query protocol): who the caller is. sagelab has one identity, the account's root user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.operations import STS, Call, OperationTable
from sagelab.api.query_protocol import QueryService
from sagelab.errors import ValidationError

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = STS.op


class StsFace:
    protocol = "query"

    def __init__(self, platform: Platform):
        self.platform = platform

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def get_caller_identity(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        account = self.platform.account_id
        # The root user's UserId is the account id itself, and its ARN names no user.
        return {"UserId": account, "Account": account, "Arn": f"arn:aws:iam::{account}:root"}

    def get_access_key_info(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        if self.platform.lookup_secret(params["AccessKeyId"]) is None:
            raise ValidationError(f"AccessKeyId {params['AccessKeyId']!r} is not a key of this sagelab server.")
        return {"Account": self.platform.account_id}

    operations = OperationTable("sts", STS, (
        # Needs no permission: a caller that every policy denies still learns who it is.
        op("GetCallerIdentity", get_caller_identity, read_only=True, always_allowed=True),
        op("GetAccessKeyInfo", get_access_key_info, read_only=True),
    ))
    wire = QueryService(operations)
