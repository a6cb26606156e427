"""What a job's execution role may do to the lake, decided inside the job process.

A job whose RoleArn names a role of this server acts as a session of that role (`assumed-role/<role>/
SageMaker`), so its reads and writes are held to the role's policies and the buckets' policies, as the
server's enforcer holds API calls. A RoleArn naming no role of this server keeps the old behaviour: any
well-formed ARN is accepted and the job may touch anything, since notebooks pass arbitrary role ARNs.

Built from the metadata store and the account alone (no Platform, no cache that could go stale), so a job
process can build it from its `ProcessParts`.
"""

from __future__ import annotations

from sagelab.account import Account
from sagelab.errors import S3Error
from sagelab.iam import principals
from sagelab.iam.authorizer import Authorizer
from sagelab.iam.directory import IamDirectory
from sagelab.iam.principals import Caller
from sagelab.iam.sessions import SessionStore
from sagelab.lake.blobs import BlobStore
from sagelab.lake.bucket_policies import BucketPolicies
from sagelab.lake.uris import S3Uri
from sagelab.storage.resources import ResourceStore

#: The session name SageMaker gives the sessions it opens for a job.
JOB_SESSION = "SageMaker"
#: The session name Glue gives the sessions it opens for a crawl.
CRAWLER_SESSION = "AWS-Crawler"


class RoleAccessDenied(Exception):
    """The job's role may not do what the job needs; the message is the job's FailureReason after its prefix."""


class RoleAccess:
    def __init__(self, authorizer: Authorizer, caller: Caller, role_arn: str):
        self.authorizer = authorizer
        self.caller = caller
        self.role_arn = role_arn

    @classmethod
    def for_role(cls, resources: ResourceStore, account: Account, role_arn: str | None, *,
                 session: str = JOB_SESSION) -> RoleAccess | None:
        """The access of the role the ARN names, or None when this server has no such role. A bare role
        name (Glue accepts one for a crawler's Role) names the role of that name in this account."""
        if not role_arn:
            return None
        if not role_arn.startswith("arn:"):
            role_arn = f"arn:aws:iam::{account.id}:role/{role_arn}"
        directory = IamDirectory(resources=resources, account=account)
        role = directory.role_by_arn(role_arn)
        if role is None:
            return None
        authorizer = Authorizer(directory=directory, sessions=SessionStore(resources=resources, account=account),
                                bucket_policies=BucketPolicies(resources=resources), account=account)
        return cls(authorizer, principals.role_session(account.id, role, session), role_arn)

    def require(self, action: str, resource: str, keys: dict[str, object] | None = None) -> None:
        _, decision = self.authorizer.decide(self.caller, action, resource, keys)
        if not decision.allowed:
            raise RoleAccessDenied(f"Access denied: role {self.role_arn} is not authorized to perform {action} "
                                   f"on {resource}")

    def require_read(self, blobs: BlobStore, uri: S3Uri) -> None:
        """s3:ListBucket on the bucket for the prefix, and s3:GetObject on every object under it."""
        self.require("s3:ListBucket", f"arn:aws:s3:::{uri.bucket}", {"s3:prefix": uri.key})
        try:
            keys = [info.key for info in blobs.list(uri.bucket, uri.key)]
        except S3Error:  # no such bucket: reading the channel says so, in the job's own words
            return
        for key in keys or [uri.key]:
            self.require("s3:GetObject", f"arn:aws:s3:::{uri.bucket}/{key}")

    def require_write(self, uri: S3Uri) -> None:
        self.require("s3:PutObject", f"arn:aws:s3:::{uri.bucket}/{uri.key}")
