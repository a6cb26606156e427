"""The AWS JSON 1.1 protocol, for every service that speaks it (SageMaker, Glue, Athena, Logs, ...).

`POST /` with `X-Amz-Target: <TargetPrefix>.<Operation>` and a JSON body. A `JsonService` reads a request
through a face's operation table: `resolve` finds the operation and its validated parameters (against
botocore's service model), `answer` runs the handler, which receives the face, the parameters and the request
and returns the response document.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import botocore.session

from sagelab.api.http import Request, Response, json_response
from sagelab.api.operations import Call, OperationTable
from sagelab.api.validation import validate
from sagelab.errors import SagelabError, UnknownOperation, ValidationError

#: (face, validated parameters, request) -> the response document.
Handler = Callable[[Any, dict[str, Any], Request], dict[str, Any] | None]


class SerializationError(SagelabError):
    code = "SerializationException"


@dataclasses.dataclass
class JsonService:
    target_prefix: str
    operations: OperationTable[Handler]
    _model: Any = None

    def service_model(self) -> Any:
        if self._model is None:
            self._model = botocore.session.get_session().get_service_model(self.operations.model_name)
        return self._model

    def resolve(self, request: Request) -> Call:
        target = request.headers.get("x-amz-target", "")
        prefix, _, name = target.rpartition(".")
        if prefix != self.target_prefix or not name:
            raise UnknownOperation(f"X-Amz-Target {target!r} does not name a {self.target_prefix} operation.")
        operation = self.operations.get(name)
        if operation is None:
            service = self.service_model().metadata.get("serviceId", self.target_prefix)
            raise UnknownOperation(f"Operation {name} is not supported by sagelab's {service} API yet.")
        try:
            params = json.loads(request.body or b"{}")
        except ValueError:
            raise SerializationError("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise SerializationError("The request body must be a JSON object.")
        model = self.service_model()
        if name in model.operation_names:
            try:
                validate(params, model.operation_model(name).input_shape)
            except ValidationError as invalid:
                return Call(operation, params, invalid_input=invalid)
        return Call(operation, params)

    def answer(self, face: Any, call: Call, request: Request) -> Response:
        return json_response(call.operation.handler(face, call.params, request) or {})
