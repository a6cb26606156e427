"""CloudTrail event records: one API call, written with the fields and spellings CloudTrail uses.

The face layer hands over an `ApiCall` of plain values (who called, what, with which parameters, and how it
ended); `event_record` makes the record. Request parameters never carry secrets or payloads: members named
like credentials, plaintexts, ciphertexts or bodies are left out, as CloudTrail leaves them out.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

EVENT_VERSION = "1.09"
#: Members never written to a record: credentials, key material, payloads.
_SECRET = re.compile(r"(?i)(secret|password|plaintext|ciphertextblob|^body$|sessiontoken|privatekey|"
                     r"credentials)")


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who made a call, as the request's verified signature says."""

    account_id: str
    access_key_id: str = ""
    #: Root, IAMUser or AssumedRole (the last two come with their ARN, name and principal id).
    kind: str = "Root"
    arn: str = ""
    user_name: str = ""
    principal_id: str = ""


@dataclasses.dataclass(frozen=True)
class ApiCall:
    event_source: str
    event_name: str
    region: str
    caller: Caller | None
    source_ip: str
    user_agent: str
    request_id: str
    params: Mapping[str, Any]
    #: The answer's document for a write that succeeded (None for reads and failures).
    response: Mapping[str, Any] | None
    error_code: str | None
    error_message: str | None
    read_only: bool
    management: bool
    #: (resource type, resource name) the call acted on, for LookupEvents' ResourceName/ResourceType.
    resources: tuple[tuple[str, str], ...] = ()
    #: Set for calls that came over TLS: the Host header the client sent.
    tls_host: str | None = None
    #: The parameters' member names are already CloudTrail's (S3's bucketName, Host, key): not re-cased.
    params_spelled: bool = False


def user_identity(caller: Caller | None) -> dict[str, Any]:
    """CloudTrail's userIdentity block. One place, so richer principals only add a branch here."""
    if caller is None:
        return {"type": "AWSAccount", "principalId": "", "accountId": ""}
    if caller.kind == "Root":
        return {"type": "Root", "principalId": caller.account_id, "arn": f"arn:aws:iam::{caller.account_id}:root",
                "accountId": caller.account_id, "accessKeyId": caller.access_key_id}
    identity = {"type": caller.kind, "principalId": caller.principal_id, "arn": caller.arn,
                "accountId": caller.account_id, "accessKeyId": caller.access_key_id}
    if caller.user_name:
        identity["userName"] = caller.user_name
    return identity


def username(caller: Caller | None) -> str:
    """What LookupEvents' Username matches: the IAM user's name, the role session's, or `root`."""
    if caller is None:
        return ""
    if caller.kind == "Root":
        return "root"
    return caller.user_name or caller.arn.rsplit("/", 1)[-1]


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def scrubbed(value: Any, *, recase: bool = True) -> Any:
    """Parameters as CloudTrail writes them: lower camel case member names, secrets and payloads left out."""
    if isinstance(value, Mapping):
        return {_camel(str(k)) if recase else str(k): scrubbed(v, recase=recase) for k, v in value.items()
                if not _SECRET.search(str(k))}
    if isinstance(value, list):
        return [scrubbed(v, recase=recase) for v in value]
    return value


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def event_record(call: ApiCall, *, now: float | None = None, event_id: str | None = None) -> dict[str, Any]:
    when = time.time() if now is None else now
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(call.caller),
        "eventTime": iso(when),
        "eventSource": call.event_source,
        "eventName": call.event_name,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
    }
    if call.error_code:
        record["errorCode"] = call.error_code
        record["errorMessage"] = call.error_message or ""
    record.update({
        "requestParameters": scrubbed(dict(call.params), recase=not call.params_spelled) or None,
        "responseElements": scrubbed(dict(call.response)) if call.response else None,
        "requestID": call.request_id,
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": call.read_only,
        "resources": [{"type": kind, "ARN": name} for kind, name in call.resources if name.startswith("arn:")]
        or None,
        "eventType": "AwsApiCall",
        "managementEvent": call.management,
        "recipientAccountId": call.caller.account_id if call.caller else "",
        "eventCategory": "Management" if call.management else "Data",
        # The server does not learn the negotiated version and suite, so only the host is written.
        "tlsDetails": {"clientProvidedHostHeader": call.tls_host} if call.tls_host is not None else None,
    })
    return {k: v for k, v in record.items() if v is not None or k in ("requestParameters", "responseElements")}
