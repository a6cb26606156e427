"""The app's CloudTrail observer: what each answered call was, as the plain values `cloudtrail` records.

Calls whose operation is NOT_RECORDED (InvokeEndpoint, GetLogEvents, FilterLogEvents) and requests refused
before they named an operation (bad signatures, unknown operations) return at once: nothing is built for
them, so the serving path pays one attribute check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sagelab.api.app import Answered
from sagelab.api.operations import ANY, Audit, OperationTable
from sagelab.cloudtrail.records import ApiCall, Caller
from sagelab.iam.principals import CallerKind

#: botocore service -> CloudTrail's eventSource, where it is not `<name>.amazonaws.com`.
_SOURCES = {"sagemaker-runtime": "runtime.sagemaker.amazonaws.com", "cloudwatch": "monitoring.amazonaws.com"}
#: IAM/ARN service prefix -> the service's name in resource types (`AWS::SageMaker::TrainingJob`).
_TYPE_SERVICES = {"sagemaker": "SageMaker", "s3": "S3", "glue": "Glue", "athena": "Athena", "logs": "Logs",
                  "kms": "KMS", "cloudtrail": "CloudTrail", "sts": "STS", "iam": "IAM", "kinesis": "Kinesis",
                  "firehose": "KinesisFirehose", "kinesisanalytics": "KinesisAnalytics", "cloudwatch": "CloudWatch", "dms": "DMS"}
_KIND = re.compile(r"^([a-z][a-z0-9-]*)[/:]")


#: The IAM guard's kinds of caller -> CloudTrail's userIdentity types.
_IDENTITY_TYPES = {CallerKind.ROOT: "Root", CallerKind.USER: "IAMUser", CallerKind.ASSUMED_ROLE: "AssumedRole"}


def caller_of(answered: Answered) -> Caller | None:
    """Who made the call: the caller the IAM guard worked out, by the access key the signature names (the
    account's root when the guard did not look, e.g. with a refused signature)."""
    request = answered.request
    principal = request.principal
    key = principal.access_key_id if principal else ""
    who = request.caller
    if who is None or who.is_root:
        return Caller(account_id=request.account_id, access_key_id=key)
    return Caller(account_id=who.account, access_key_id=key, kind=_IDENTITY_TYPES[who.kind], arn=who.arn,
                  user_name=who.name if who.kind is CallerKind.USER else "", principal_id=who.user_id)


def resource_type(table: OperationTable[Any], template: str) -> str:
    service = _TYPE_SERVICES.get(table.namespace.name, table.namespace.name.capitalize())
    if table.namespace.name == "s3":
        return "AWS::S3::Object" if "{Key}" in template else "AWS::S3::Bucket"
    match = _KIND.match(template)
    kind = "".join(part.capitalize() for part in match[1].split("-")) if match else "Resource"
    return f"AWS::{service}::{kind}"


def _response_elements(answered: Answered) -> dict[str, Any] | None:
    """The answer's document for a management write that succeeded (JSON faces), as CloudTrail logs it."""
    response, call = answered.response, answered.call
    if call is None or call.operation.read_only or answered.error_code or not isinstance(response.body, bytes):
        return None
    if "json" not in (response.content_type or "") or not response.body:
        return None
    try:
        document = json.loads(response.body)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document else None


def api_call(answered: Answered) -> ApiCall | None:
    call, table, request = answered.call, answered.table, answered.request
    if call is None or table is None or call.operation.audit is Audit.NOT_RECORDED:
        return None
    arn = table.resource_arn(call.operation, call.params, region=request.region, account=request.account_id)
    resources: tuple[tuple[str, str], ...] = ()
    if arn != ANY and not arn.endswith("*"):
        kind = resource_type(table, call.operation.resource)
        resources = ((kind, arn), (kind, arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]))
    params, spelled = call.params, False
    if table.model_name == "s3":  # CloudTrail's own names for S3's request: bucketName, Host, key
        spelled = True
        params = {"bucketName": call.params.get("Bucket"), "Host": request.headers.get("host", ""),
                  **({"key": call.params["Key"]} if call.params.get("Key") else {})}
        params = {k: v for k, v in params.items() if v}
    return ApiCall(
        event_source=_SOURCES.get(table.model_name, f"{table.model_name}.amazonaws.com"),
        event_name=call.operation.name, region=request.region, caller=caller_of(answered),
        source_ip=request.client_ip, user_agent=request.headers.get("user-agent", ""),
        request_id=request.request_id, params=params, params_spelled=spelled, response=_response_elements(answered),
        error_code=answered.error_code, error_message=answered.error_message,
        read_only=call.operation.read_only, management=call.operation.audit is Audit.MANAGEMENT,
        resources=resources,
        tls_host=request.headers.get("host", "") if request.secure_transport else None)


def cloudtrail_observer(record: Callable[[ApiCall], Any]) -> Callable[[Answered], Callable[[], object] | None]:
    """An app observer that records each call with `record` (which returns a durability event, or None)."""
    def observe(answered: Answered) -> Callable[[], object] | None:
        call = api_call(answered)
        if call is None:
            return None
        done = record(call)
        return None if done is None else done.wait
    return observe
