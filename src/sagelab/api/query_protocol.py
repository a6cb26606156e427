"""The AWS query protocol (STS, IAM, ...): form-encoded `Action=...&Version=...` in, XML out.

A `QueryService` reads a request through a face's operation table, like `JsonService`: `resolve` reads
the flattened form (`Tags.member.1.Key=...`) back into the operation's input structure and validates it;
`answer` runs the handler and writes its result as `<ActionResponse><ActionResult>...` following the
output shape, in the service's XML namespace.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import Shape

from sagelab.api.http import Request, Response
from sagelab.api.operations import Call, OperationTable
from sagelab.api.validation import validate
from sagelab.errors import UnknownOperation, ValidationError

#: (face, validated parameters, request) -> the result document.
Handler = Callable[[Any, dict[str, Any], Request], dict[str, Any] | None]


class InvalidAction(UnknownOperation):
    """The query protocol's spelling of an operation the service does not have."""

    code = "InvalidAction"


# --- form -> parameters ---------------------------------------------------------------------------------
def _scalar(raw: str, shape: Shape, name: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
        if kind == "timestamp":
            return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if kind == "blob":
            return base64.b64decode(raw)
    except ValueError:
        raise ValidationError(f"Value {raw!r} at '{name}' is not a valid {kind}.") from None
    return raw


def _read(form: Mapping[str, str], shape: Shape, prefix: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for member, member_shape in shape.members.items():
            key = member_shape.serialization.get("name", member)
            full = f"{prefix}.{key}" if prefix else key
            if full in form or any(k.startswith(full + ".") for k in form):
                out[member] = _read(form, member_shape, full)
        return out
    if kind == "list":
        if form.get(prefix) == "":
            return []
        flattened = shape.serialization.get("flattened")
        base = prefix if flattened else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items, i = [], 1
        while f"{base}.{i}" in form or any(k.startswith(f"{base}.{i}.") for k in form):
            items.append(_read(form, shape.member, f"{base}.{i}"))
            i += 1
        return items
    if kind == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out, i = {}, 1
        while f"{base}.{i}.{key_name}" in form:
            out[form[f"{base}.{i}.{key_name}"]] = _read(form, shape.value, f"{base}.{i}.{value_name}")
            i += 1
        return out
    return _scalar(form[prefix], shape, prefix)


def parse_form(body: bytes, query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    if body:
        pairs += parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return dict(pairs)


# --- result -> XML ----------------------------------------------------------------------------------------
def _text(value: Any, shape: Shape) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.UTC)
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "blob":
        return base64.b64encode(value).decode()
    return escape(str(value))


def _write(value: Any, shape: Shape) -> str:
    """The content of an element holding `value` (its tag is written by the caller)."""
    kind = shape.type_name
    if kind == "structure":
        parts = []
        for member, member_shape in shape.members.items():
            if member in value and value[member] is not None:
                parts.append(_element(member_shape.serialization.get("name", member), value[member], member_shape))
        return "".join(parts)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(_element(tag, item, shape.member) for item in value)
    if kind == "map":
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        return "".join(f"<entry>{_element(key_tag, k, shape.key)}{_element(value_tag, v, shape.value)}</entry>"
                       for k, v in value.items())
    return _text(value, shape)


def _element(tag: str, value: Any, shape: Shape) -> str:
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        return "".join(_element(tag, item, shape.member) for item in value)
    return f"<{tag}>{_write(value, shape)}</{tag}>"


@dataclasses.dataclass
class QueryService:
    operations: OperationTable[Handler]
    _model: Any = None

    def service_model(self) -> Any:
        if self._model is None:
            self._model = botocore.session.get_session().get_service_model(self.operations.model_name)
        return self._model

    def resolve(self, request: Request) -> Call:
        form = parse_form(request.body, request.raw_query)
        action = form.get("Action", "")
        model = self.service_model()
        name = model.metadata.get("serviceId", self.operations.model_name)
        if not action:
            raise InvalidAction(f"The request names no Action; {name} expects Action=<operation> in the form body.")
        operation = self.operations.get(action)
        if operation is None:
            raise InvalidAction(f"Operation {action} is not supported by sagelab's {name} API yet.")
        version = form.get("Version")
        if version and version != model.metadata["apiVersion"]:
            raise ValidationError(f"Version {version!r} is not supported; {name} answers API version "
                                  f"{model.metadata['apiVersion']}.")
        input_shape = model.operation_model(action).input_shape
        params = _read(form, input_shape, "") if input_shape is not None else {}
        try:
            validate(params, input_shape)
        except ValidationError as invalid:
            return Call(operation, params, invalid_input=invalid)
        return Call(operation, params)

    def answer(self, face: Any, call: Call, request: Request) -> Response:
        action = call.operation.name
        model = self.service_model()
        result = call.operation.handler(face, call.params, request) or {}
        output = model.operation_model(action).output_shape
        wrapper = output.serialization.get("resultWrapper", f"{action}Result") if output is not None else None
        inner = f"<{wrapper}>{_write(result, output)}</{wrapper}>" if output is not None else ""
        body = (f'<{action}Response xmlns="{model.metadata["xmlNamespace"]}">{inner}'
                f"<ResponseMetadata><RequestId>{request.request_id}</RequestId></ResponseMetadata>"
                f"</{action}Response>")
        return Response(body=body.encode(), content_type="text/xml")
