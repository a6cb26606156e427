"""CloudWatch's three wire protocols, read and written in one place.

botocore's model lists `["smithy-rpc-v2-cbor", "json", "query"]`: boto3 speaks Smithy RPC v2 CBOR
(`POST /service/GraniteServiceVersion20100801/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`, CBOR bodies,
timestamps as CBOR tag 1), older clients JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`)
or query (`Action=<Op>` forms, XML answers). `protocol_of` tells which a request speaks; the answer and
its errors (`api/errors.py`) are written in the same one. Parameters reach handlers alike whatever the
protocol: timestamps as epoch seconds, validated against botocore's model, where a missing member is
CloudWatch's MissingParameter and any other refusal InvalidParameterValue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from typing import Any

import botocore.session
import cbor2
from botocore.model import Shape

from sagelab.api.http import Request, Response, json_response
from sagelab.api.operations import Call, OperationTable
from sagelab.api.query_protocol import InvalidAction, QueryService
from sagelab.api.validation import validate
from sagelab.errors import SagelabError, UnknownOperation, ValidationError
from sagelab.monitoring.metric_errors import InvalidParameterValue, MissingParameter

CBOR, JSON_10, QUERY = "cbor", "json-1.0", "query"
CBOR_TYPE, JSON_10_TYPE = "application/cbor", "application/x-amz-json-1.0"


class SerializationError(SagelabError):
    code = "SerializationException"


def protocol_of(request: Request, target_prefix: str) -> str:
    if request.headers.get("smithy-protocol") == "rpc-v2-cbor" or request.path.startswith("/service/"):
        return CBOR
    if request.headers.get("x-amz-target", "").startswith(target_prefix + "."):
        return JSON_10
    return QUERY


def _epochs(value: Any, shape: Shape | None) -> Any:
    """Input timestamps (CBOR datetimes, query ISO strings already parsed) as epoch seconds."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _epochs(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_epochs(v, shape.member) for v in value]
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


def _tagged(value: Any, shape: Shape | None) -> Any:
    """An output document with its timestamps as CBOR tag 1 (epoch seconds)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _tagged(v, shape.members[k]) for k, v in value.items() if k in shape.members and v is not None}
    if kind == "list":
        return [_tagged(v, shape.member) for v in value]
    if kind == "map":
        return {k: _tagged(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        stamp = value.timestamp() if isinstance(value, dt.datetime) else float(value)
        return cbor2.CBORTag(1, stamp)
    if kind in ("double", "float") and isinstance(value, int):
        return float(value)
    return value


def cloudwatch_refusal(invalid: ValidationError) -> SagelabError:
    if "must not be null" in invalid.message:
        return MissingParameter(invalid.message)
    return InvalidParameterValue(invalid.message)


@dataclasses.dataclass
class GraniteService:
    """One operation table, answered in whichever of the three protocols the request speaks."""

    target_prefix: str
    operations: OperationTable[Any]
    _model: Any = None

    def __post_init__(self) -> None:
        self.query = QueryService(self.operations)

    def service_model(self) -> Any:
        if self._model is None:
            self._model = botocore.session.get_session().get_service_model(self.operations.model_name)
        return self._model

    def _operation(self, name: str) -> Any:
        operation = self.operations.get(name)
        if operation is None:
            raise UnknownOperation(f"Operation {name} is not supported by sagelab's CloudWatch API yet.")
        return operation

    def resolve(self, request: Request) -> Call:
        if request.headers.get("content-encoding", "").lower() == "gzip":  # PutMetricData's requestcompression
            try:
                request.body = gzip.decompress(request.body)
            except (OSError, EOFError):
                raise SerializationError("The request body is not valid gzip (Content-Encoding: gzip).") from None
            del request.headers["content-encoding"]
        protocol = protocol_of(request, self.target_prefix)
        model = self.service_model()
        if protocol == QUERY:
            try:
                call = self.query.resolve(request)
            except InvalidAction:
                raise
            except ValidationError as invalid:  # a form value of the wrong type
                raise cloudwatch_refusal(invalid) from None
            params = _epochs(dict(call.params), model.operation_model(call.operation.name).input_shape)
            return self._checked(call.operation, params)
        if protocol == CBOR:
            prefix = f"/service/{self.target_prefix}/operation/"
            if not request.path.startswith(prefix):
                raise UnknownOperation(f"Path {request.path!r} names no CloudWatch operation; expected {prefix}<Op>.")
            operation = self._operation(request.path[len(prefix):])
            try:
                params = cbor2.loads(request.body) if request.body else {}
            except Exception:  # noqa: BLE001 - any undecodable body is the client's error
                raise SerializationError("The request body is not valid CBOR.") from None
        else:
            operation = self._operation(request.headers["x-amz-target"].split(".", 1)[1])
            try:
                params = json.loads(request.body or b"{}")
            except ValueError:
                raise SerializationError("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise SerializationError("The request body must be a structure.")
        shape = model.operation_model(operation.name).input_shape
        return self._checked(operation, _epochs(params, shape))

    def _checked(self, operation: Any, params: dict[str, Any]) -> Call:
        shape = self.service_model().operation_model(operation.name).input_shape
        try:
            validate(params, shape)
        except ValidationError as invalid:
            return Call(operation, params, invalid_input=cloudwatch_refusal(invalid))
        return Call(operation, params)

    def answer(self, face: Any, call: Call, request: Request) -> Response:
        protocol = protocol_of(request, self.target_prefix)
        if protocol == QUERY:
            return self.query.answer(face, call, request)
        result = call.operation.handler(face, call.params, request) or {}
        if protocol == JSON_10:
            return json_response(result, content_type=JSON_10_TYPE)
        output = self.service_model().operation_model(call.operation.name).output_shape
        body = cbor2.dumps(_tagged(result, output) if output is not None else {})
        return Response(body=body, content_type=CBOR_TYPE, headers=[("smithy-protocol", "rpc-v2-cbor")])


