"""IAM enforcement on every face: the guard that admits a call only when the caller's policies allow it.

It runs after a request is resolved to its operation and before the handler (and before the input is
validated: AWS authorizes first). For each permission the operation's table entry names (`Operation.accesses`,
rendered with the request's parameters, region and account) it asks the platform's `Authorizer`, with the
condition keys the request supplies. A refusal is an `AccessDenied`, rendered in the face's protocol by the
one error layer. `always_allowed` operations (GetCallerIdentity) still name their caller, so a bad session
token is refused there too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request
from sagelab.api.operations import IAM, S3, Operation, ServiceNamespace
from sagelab.iam.principals import CallerKind

if TYPE_CHECKING:
    from sagelab.platform import Platform

_S3_LISTINGS = frozenset({"ListObjects", "ListObjectsV2"})


def _instance_types(*paths: str) -> Callable[[Mapping[str, Any]], list[str]]:
    """Reads every instance type at these member paths; a path segment ending in [] walks a list."""
    def read(params: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        for path in paths:
            values: list[Any] = [params]
            for name in path.split("."):
                many = name.endswith("[]")
                name = name.removesuffix("[]")
                values = [v.get(name) for v in values if isinstance(v, Mapping)]
                if many:
                    values = [item for v in values if isinstance(v, list) for item in v]
            found += [v for v in values if isinstance(v, str)]
        return found
    return read


#: sagemaker:InstanceTypes: the operation -> the instance types its request asks for.
INSTANCE_TYPES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "CreateTrainingJob": _instance_types("ResourceConfig.InstanceType",
                                         "ResourceConfig.InstanceGroups[].InstanceType"),
    "CreateEndpointConfig": _instance_types("ProductionVariants[].InstanceType"),
    "CreateTransformJob": _instance_types("TransformResources.InstanceType"),
    "CreateProcessingJob": _instance_types("ProcessingResources.ClusterConfig.InstanceType"),
    "CreateHyperParameterTuningJob": _instance_types("TrainingJobDefinition.ResourceConfig.InstanceType"),
}


def condition_keys(request: Request, operation: Operation[Any], params: Mapping[str, Any]) -> dict[str, object]:
    """The request's condition keys (the principal's own are added by the authorizer)."""
    now = time.time()
    keys: dict[str, object] = {
        "aws:SourceIp": request.client_ip or None, "aws:SecureTransport": request.secure_transport,
        "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "aws:EpochTime": int(now),
        "aws:RequestedRegion": request.region,
    }
    if operation.name in _S3_LISTINGS and operation.action == "s3:ListBucket":
        # A listing without a prefix lists from the top: policies grant that with "s3:prefix": [""].
        keys["s3:prefix"] = request.query.get("prefix", "")
    if operation.action == "sts:AssumeRole":  # what trust policies test
        keys["sts:RoleSessionName"] = params.get("RoleSessionName")
        keys["sts:ExternalId"] = params.get("ExternalId")
    instance_types = INSTANCE_TYPES.get(operation.name) if operation.action.startswith("sagemaker:") else None
    if instance_types is not None:
        keys["sagemaker:InstanceTypes"] = instance_types(params) or None
    return keys


class IamEnforcer:
    """A `Guard` for `SagelabApp`: built on the platform, it reaches the authorizer per call. `namespaces`
    (IAM action prefix -> how that service spells its ARNs) comes from the faces' operation tables."""

    def __init__(self, platform: Platform, namespaces: Mapping[str, ServiceNamespace]):
        self.platform = platform
        self.namespaces = dict(namespaces)

    def __call__(self, request: Request, operation: Operation[Any], params: Mapping[str, Any]) -> None:
        if request.principal is None:  # auth is off: there is no caller to hold to a policy
            return
        authorizer = self.platform.authorizer
        caller = authorizer.caller(request.principal.access_key_id, request.principal.session_token)
        request.caller = caller
        if operation.always_allowed:
            return
        prefix = operation.action.split(":", 1)[0]
        if caller.is_root and prefix not in ("s3", "sts"):  # root's only limits: bucket policies, AssumeRole
            return
        # (A per-item S3 call of root still sets `request.may`: a bucket policy's Deny holds root too.)
        keys = lambda: condition_keys(request, operation, params)  # noqa: E731 - made only if a policy reads keys
        if operation.per_item:
            request.may = lambda action, resource: authorizer.decide(caller, action, resource, keys)[1].allowed
            return
        namespace = self.namespaces[prefix]
        if namespace is IAM and not params.get("UserName") and caller.kind is CallerKind.USER:
            params = {**params, "UserName": caller.name}  # GetUser, CreateAccessKey, ... act on the caller then
        for access in operation.needed(params):
            resource = namespace.arn(access.resource, params, region=request.region, account=request.account_id)
            authorizer.authorize(caller, access.action, resource, keys, quote_resource=namespace is S3)

