"""sagemaker-runtime: `POST /endpoints/{EndpointName}/invocations` (rest-json), answered on the event loop.

`POST /endpoints/{EndpointName}/async-invocations` (InvokeEndpointAsync) only queues the request durably
(hosting/async_inference.py) and answers 202.

This is the hot path: no worker thread, no database. The request goes to one instance of the chosen
variant over a Unix socket; the model's answer comes back with SageMaker's headers.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

import anyio

from sagelab.api.http import Request, Response
from sagelab.api.operations import SAGEMAKER, Audit, Call, OperationTable
from sagelab.errors import InvocationValidationError, ModelError

if TYPE_CHECKING:
    from sagelab.platform import Platform

MAX_BODY = 6 * 1024 * 1024
_PREFIX = "/endpoints/"
_PASSED_HEADERS = ("x-amzn-sagemaker-custom-attributes",)


def is_runtime_path(raw_path: str) -> bool:
    return raw_path.startswith(_PREFIX)


class RuntimeFace:
    protocol = "rest-json"

    def __init__(self, platform: Platform):
        self.platform = platform

    def resolve(self, request: Request) -> Call:
        name, _, action = unquote(request.raw_path[len(_PREFIX):]).partition("/")
        if action == "async-invocations" and request.method == "POST":
            return Call(self.operations["InvokeEndpointAsync"], {"EndpointName": name})
        if action != "invocations" or request.method != "POST":
            raise InvocationValidationError(f"{request.method} {request.path} is not a sagemaker-runtime operation; "
                                            "use POST /endpoints/{EndpointName}/invocations.")
        return Call(self.operations["InvokeEndpoint"], {"EndpointName": name})

    async def answer(self, call: Call, request: Request) -> Response:
        return await call.operation.handler(self, call.params, request)

    async def invoke_endpoint(self, params: dict[str, str], request: Request) -> Response:
        name = params["EndpointName"]
        fleet = self.platform.fleet
        route = fleet.routes.get(name)
        if route is None:
            raise InvocationValidationError(f"Endpoint {name} of account {self.platform.account_id} not found.")
        if route.async_inference is not None:
            raise InvocationValidationError(f"Endpoint {name} is an asynchronous endpoint (its endpoint config has "
                                            "AsyncInferenceConfig): invoke it with InvokeEndpointAsync.")
        body = request.body
        if len(body) > MAX_BODY:
            raise InvocationValidationError(f"Request body is {len(body)} bytes; the limit for InvokeEndpoint is "
                                            f"{MAX_BODY} bytes (6 MB).")
        if not body:
            raise InvocationValidationError("Body must not be empty: there is nothing to predict.")
        headers = request.headers
        target = headers.get("x-amzn-sagemaker-target-variant")
        if target and target not in route.variants:
            raise InvocationValidationError(f"TargetVariant {target!r} is not a variant of endpoint {name}. "
                                            f"Variants: {', '.join(route.variants)}.")
        header = {"content_type": headers.get("content-type", ""), "accept": headers.get("accept", ""),
                  "target_model": headers.get("x-amzn-sagemaker-target-model", ""),
                  "target_container": headers.get("x-amzn-sagemaker-target-container-hostname", "")}
        variant, answer, payload, model_seconds = await fleet.invoke(route, target, header, body)
        status = answer["status"]
        recorded = status if status < 400 else (400 if status < 500 else 500)
        self.platform.invocation_metrics.record(name, variant, recorded, model_seconds,
                                                time.perf_counter() - request.received_at,
                                                len(route.variants[variant].instances))
        if "multi_model" in answer:
            self.platform.invocation_metrics.record_multi_model(name, variant, answer["multi_model"])
        if answer.get("validation_error"):
            raise InvocationValidationError(payload.decode("utf-8", "replace"))
        if status >= 400:
            raise ModelError(status, payload.decode("utf-8", "replace"),
                             f"arn:aws:logs:{request.region}:{self.platform.account_id}:log-group:"
                             f"/aws/sagemaker/Endpoints/{name}")
        self.platform.data_capture.record(name, variant, header["content_type"], body,
                                          answer.get("content_type") or "", payload,
                                          headers.get("x-amzn-sagemaker-inference-id"))
        out = [("x-Amzn-Invoked-Production-Variant", variant)]
        out += [(h, headers[h]) for h in _PASSED_HEADERS if h in headers]
        if "x-amzn-sagemaker-inference-id" in headers:
            out.append(("X-Amzn-SageMaker-Inference-Id", headers["x-amzn-sagemaker-inference-id"]))
        return Response(status=200 if status < 300 else status, body=payload, headers=out,
                        content_type=answer.get("content_type"))

    async def invoke_endpoint_async(self, params: dict[str, str], request: Request) -> Response:
        name = params["EndpointName"]
        route = self.platform.fleet.routes.get(name)
        if route is None:
            raise InvocationValidationError(f"Endpoint {name} of account {self.platform.account_id} not found.")
        if route.async_inference is None:
            raise InvocationValidationError(f"Endpoint {name} is not an asynchronous endpoint (its endpoint config has "
                                            "no AsyncInferenceConfig): invoke it with InvokeEndpoint.")
        # The queue entry is written to the metadata store before the 202: off the event loop.
        accepted = await anyio.to_thread.run_sync(self.platform.async_inference.submit, name, route,
                                                  request.headers)
        return Response(status=202, body=json.dumps({"InferenceId": accepted["InferenceId"]}).encode(),
                        content_type="application/json",
                        headers=[("X-Amzn-SageMaker-OutputLocation", accepted["OutputLocation"]),
                                 ("X-Amzn-SageMaker-FailureLocation", accepted["FailureLocation"])])

    operations = OperationTable("sagemaker-runtime", SAGEMAKER, (
        # An action of the sagemaker prefix, on the endpoint; CloudTrail records no invocations at all.
        SAGEMAKER.op("InvokeEndpoint", invoke_endpoint, "endpoint/{EndpointName}", audit=Audit.NOT_RECORDED,
                     read_only=True),
        SAGEMAKER.op("InvokeEndpointAsync", invoke_endpoint_async, "endpoint/{EndpointName}",
                     audit=Audit.NOT_RECORDED, read_only=True),
    ), signing_name="sagemaker")
