"""Operation tables: for every AWS operation a face answers, what answers it and what it touches.

Each face declares one `OperationTable` beside its handlers. An entry names the operation (botocore's
spelling), the handler that answers it, the IAM action that authorizes it, the resource it acts on, and how
CloudTrail records it. Faces dispatch through their table, so an operation is answered exactly when it has an
entry; the tables are class-level values, readable without a Platform (the support table reads them so).

A resource is `*` when the action is not scoped to a resource, or else an ARN template: the part after
`arn:aws:<service>:<region>:<account>:` (after `arn:aws:s3:::` for S3, after `arn:aws:iam::<account>:` for
IAM), with placeholders for the request's input members. `{Member}` is a top-level member of the operation's botocore input shape,
`{Member.Inner}` a member inside it, `{First|Second}` the first of the two the request gives; `{region}`
and `{account}` are the request's. A member the request leaves out stands for any resource (`*`). A member
given as an ARN (SageMaker's name-or-ARN members, Logs' logGroupIdentifier) names the resource itself, up
to that placeholder.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from sagelab.platform import Platform

#: The resource of an action that is not scoped to one (List*, ListBuckets, GetCallerIdentity, ...).
ANY = "*"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

H = TypeVar("H", bound=Callable[..., Any])


class PlatformFace(Protocol):
    """What a face's handlers reach through the face: the platform, whose services they call."""

    platform: Platform


class Audit(enum.Enum):
    """How CloudTrail records a call."""

    #: A control-plane call: recorded by default (Event history, every trail).
    MANAGEMENT = "management"
    #: A data-plane call: recorded only by trails that ask for data events.
    DATA = "data"
    #: CloudTrail records no event for it at all.
    NOT_RECORDED = "not-recorded"


@dataclasses.dataclass(frozen=True)
class Access:
    """One permission a call needs: an IAM action on the resource a template names."""

    action: str
    resource: str = ANY
    #: Needed only when the call names this input member (S3's PutObject needs s3:PutObjectTagging only
    #: when it sends Tagging); None: always.
    when: str | None = None


@dataclasses.dataclass(frozen=True)
class Operation(Generic[H]):
    """One answered operation. The handler's signature is its protocol's (see each face)."""

    name: str
    handler: H
    #: `<iam prefix>:<Action>`, which is not always the operation's name (S3 HeadObject is s3:GetObject).
    action: str
    resource: str = ANY
    audit: Audit = Audit.MANAGEMENT
    #: CloudTrail's readOnly flag: the call changes nothing.
    read_only: bool = False
    #: IAM cannot refuse it: it needs no permission and even an explicit Deny does not stop it.
    always_allowed: bool = False
    #: Further permissions the call needs (CopyObject also reads its source).
    also: tuple[Access, ...] = ()
    #: The handler authorizes each item it acts on through `Request.may` (DeleteObjects: s3:DeleteObject
    #: per key, refused keys reported one by one); the guard checks no access of its own.
    per_item: bool = False

    @property
    def accesses(self) -> tuple[Access, ...]:
        """Every permission the call needs, its own action first."""
        return (Access(self.action, self.resource), *self.also)

    def needed(self, params: Mapping[str, Any]) -> tuple[Access, ...]:
        """The permissions a call with these parameters needs (those `when` a member it does not name left out)."""
        return tuple(a for a in self.accesses if a.when is None or params.get(a.when))


@dataclasses.dataclass(frozen=True)
class Call:
    """A request resolved to its operation and parameters, before anything runs: what a guard reads."""

    operation: Operation[Any]
    params: Mapping[str, Any]
    #: Why the input is invalid, when it is: raised only once the guards admitted the call, since AWS
    #: authorizes a request before it validates it (a caller without permission is refused, not corrected).
    invalid_input: Exception | None = dataclasses.field(default=None, kw_only=True)


@dataclasses.dataclass(frozen=True)
class ServiceNamespace:
    """An AWS service as IAM and ARNs name it: the action prefix and the shape of its ARNs."""

    name: str
    #: S3 ARNs name no region and no account: `arn:aws:s3:::bucket/key`.
    regional: bool = True
    #: A global service whose ARNs still name the account: `arn:aws:iam::123456789012:user/alice`.
    global_with_account: bool = False
    #: SageMaker lower-cases resource names in its ARNs (as `sagelab.arns` does).
    lower_names: bool = False

    def op(self, name: str, handler: H, resource: str = ANY, *, action: str | None = None,
           audit: Audit = Audit.MANAGEMENT, read_only: bool = False, always_allowed: bool = False,
           also: Iterable[Access] = (), per_item: bool = False) -> Operation[H]:
        """An entry whose action is `<prefix>:<name>` unless `action` names another."""
        return Operation(name, handler, f"{self.name}:{action or name}", resource, audit, read_only,
                         always_allowed, tuple(also), per_item)

    def arn(self, template: str, params: Mapping[str, Any], *, region: str, account: str) -> str:
        """The ARN `template` names for these parameters; `*` stays `*`."""
        if template == ANY:
            return ANY
        if self.regional:
            rendered = f"arn:aws:{self.name}:{region}:{account}:"
        else:
            rendered = f"arn:aws:{self.name}::{account if self.global_with_account else ''}:"
        end = 0
        for placeholder in _PLACEHOLDER.finditer(template):
            rendered += template[end:placeholder.start()]
            value = self._value(placeholder[1], params, region, account)
            rendered = value if value.startswith("arn:") else rendered + value
            end = placeholder.end()
        return rendered + template[end:]

    def _value(self, spec: str, params: Mapping[str, Any], region: str, account: str) -> str:
        if spec == "region":
            return region
        if spec == "account":
            return account
        for path in spec.split("|"):
            value = member(params, path)
            if isinstance(value, str) and value:
                return value if not self.lower_names or value.startswith("arn:") else value.lower()
        return ANY


def member(params: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted member path (`TableInput.Name`), or None where the request has none."""
    value: Any = params
    for name in path.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def placeholders(template: str) -> list[str]:
    """The member paths a template reads, alternatives split (`{A|B}` -> A, B); not region or account."""
    return [path for spec in _PLACEHOLDER.findall(template) for path in spec.split("|")
            if path not in ("region", "account")]


@dataclasses.dataclass(frozen=True)
class OperationTable(Generic[H]):
    """A face's operations, by name: the one place that says what the face answers."""

    #: botocore's name for the service model that validates the input (and names the support table's row).
    model_name: str
    namespace: ServiceNamespace
    operations: tuple[Operation[H], ...]
    #: The service named in the SigV4 credential scope; sagemaker-runtime signs as "sagemaker".
    signing_name: str = ""
    _by_name: dict[str, Operation[H]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.signing_name:
            object.__setattr__(self, "signing_name", self.model_name)
        by_name: dict[str, Operation[H]] = {}
        for operation in self.operations:
            if operation.name in by_name:
                raise ValueError(f"{self.model_name} declares {operation.name} twice.")
            by_name[operation.name] = operation
        object.__setattr__(self, "_by_name", by_name)

    def get(self, name: str) -> Operation[H] | None:
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Operation[H]:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Operation[H]]:
        return iter(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def resource_arn(self, operation: Operation[Any] | str, params: Mapping[str, Any], *, region: str,
                     account: str) -> str:
        """The ARN of the resource `operation` acts on, for a request with these parameters."""
        entry = self[operation] if isinstance(operation, str) else operation
        return self.namespace.arn(entry.resource, params, region=region, account=account)

    def permissions(self, operation: Operation[Any] | str, params: Mapping[str, Any], *, region: str,
                    account: str) -> list[tuple[str, str]]:
        """(IAM action, resource ARN) for every permission the call needs."""
        entry = self[operation] if isinstance(operation, str) else operation
        return [(access.action, self.namespace.arn(access.resource, params, region=region, account=account))
                for access in entry.needed(params)]


# --- the services sagelab answers, as IAM and their ARNs name them -------------------------------------
SAGEMAKER = ServiceNamespace("sagemaker", lower_names=True)  # sagemaker-runtime's actions are sagemaker:* too
S3 = ServiceNamespace("s3", regional=False)
GLUE = ServiceNamespace("glue")
ATHENA = ServiceNamespace("athena")
LOGS = ServiceNamespace("logs")
STS = ServiceNamespace("sts")
KINESIS = ServiceNamespace("kinesis")
FIREHOSE = ServiceNamespace("firehose")
KINESIS_ANALYTICS = ServiceNamespace("kinesisanalytics")
IAM = ServiceNamespace("iam", regional=False, global_with_account=True)
KMS = ServiceNamespace("kms")
CLOUDTRAIL = ServiceNamespace("cloudtrail")
CLOUDWATCH = ServiceNamespace("cloudwatch")
LAKEFORMATION = ServiceNamespace("lakeformation")
DMS = ServiceNamespace("dms")
APPLICATION_AUTOSCALING = ServiceNamespace("application-autoscaling")
