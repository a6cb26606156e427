"""The AWS JSON 1.1 protocol, for every service that speaks it (SageMaker, Glue, Athena, Logs, ...).

`POST /` with `X-Amz-Target: <TargetPrefix>.<Operation>` and a JSON body. A `JsonService` binds a
botocore service model (for input validation) to a table of operation handlers; handlers receive the
validated parameters and the request, and return the response document.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import botocore.session

from sagelab.api.http import Request, Response, json_response
from sagelab.api.validation import validate
from sagelab.errors import SagelabError, UnknownOperation

Handler = Callable[[dict[str, Any], Request], dict[str, Any] | None]


class SerializationError(SagelabError):
    code = "SerializationException"


@dataclasses.dataclass
class JsonService:
    #: botocore's name for the service model, e.g. "sagemaker".
    model_name: str
    target_prefix: str
    operations: dict[str, Handler]
    _model: Any = None

    def service_model(self) -> Any:
        if self._model is None:
            self._model = botocore.session.get_session().get_service_model(self.model_name)
        return self._model

    def handle(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.rpartition(".")
        if prefix != self.target_prefix or not operation:
            raise UnknownOperation(f"X-Amz-Target {target!r} does not name a {self.target_prefix} operation.")
        handler = self.operations.get(operation)
        if handler is None:
            service = self.service_model().metadata.get("serviceId", self.target_prefix)
            raise UnknownOperation(f"Operation {operation} is not supported by sagelab's {service} API yet.")
        try:
            params = json.loads(request.body or b"{}")
        except ValueError:
            raise SerializationError("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise SerializationError("The request body must be a JSON object.")
        model = self.service_model()
        if operation in model.operation_names:
            validate(params, model.operation_model(operation).input_shape)
        return json_response(handler(params, request) or {})
