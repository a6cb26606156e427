"""The request and response types every face works with (a thin layer over ASGI)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from sagelab.security.sigv4 import Principal

if TYPE_CHECKING:
    from sagelab.api.operations import Call, Operation
    from sagelab.iam.principals import Caller

JSON_11 = "application/x-amz-json-1.1"


@dataclasses.dataclass
class Request:
    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    principal: Principal | None = None
    region: str = "us-east-1"
    account_id: str = ""
    #: time.perf_counter() when the request arrived, for latency accounting.
    received_at: float = 0.0
    #: The operation the request was resolved to (set before its handler runs), for guards and auditing.
    operation: Operation[Any] | None = None
    #: The resolved call (operation and parameters), for observers of the answer (CloudTrail).
    call: Call | None = None
    #: The client's address (the ASGI scope's client): IAM's aws:SourceIp, CloudTrail's sourceIPAddress.
    client_ip: str = ""
    #: Whether the request came over TLS, for aws:SecureTransport.
    secure_transport: bool = False
    #: Who signed, as the IAM guard worked it out (root, an IAM user, a role session); CloudTrail's identity.
    caller: Caller | None = None
    #: Set by the IAM guard for a `per_item` operation: may the caller perform (action, resource)?
    may: Callable[[str, str], bool] | None = None

    @property
    def path(self) -> str:
        return unquote(self.raw_path)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))


@dataclasses.dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    content_type: str | None = None


def _default(value: Any) -> Any:
    if hasattr(value, "timestamp"):
        return value.timestamp()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_response(payload: Mapping[str, Any], *, status: int = 200, content_type: str = JSON_11,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, default=_default, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=list(headers or []), content_type=content_type)


def http_date(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
