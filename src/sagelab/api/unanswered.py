"""Requests for AWS services sagelab has no face for: a clear error in the protocol the client reads.

A client only understands errors shaped for its service's protocol (a query-protocol client cannot read
a JSON body), so the error is rendered in the protocol botocore's model gives that service, and names
the operation that was asked for.
"""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl

import botocore.session

from sagelab.api.http import Request
from sagelab.errors import UnknownOperation

#: botocore protocol -> the error shape `api.errors.render_error` writes for it.
_ERROR_SHAPES = {"json": "json", "rest-json": "rest-json", "query": "query", "rest-xml": "query", "ec2": "query"}


@functools.lru_cache(maxsize=64)
def protocol_of(service: str) -> str:
    """The error shape for a service named by its SigV4 signing name (JSON when botocore does not know it)."""
    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # noqa: BLE001 - unknown name or model: fall back to the most common protocol
        return "json"
    return _ERROR_SHAPES.get(model.protocol, "json")


def operation_asked(request: Request, protocol: str) -> str:
    target = request.headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2]
    if protocol == "query":
        form = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        form.update(parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True))
        if form.get("Action"):
            return form["Action"]
    return f"{request.method} {request.path}"


def unanswered_service(service: str, request: Request) -> UnknownOperation:
    protocol = protocol_of(service)
    return UnknownOperation(f"sagelab does not answer the {service!r} service yet, so it cannot run "
                            f"{operation_asked(request, protocol)}. Services answered: see `sagelab support-table`.")
