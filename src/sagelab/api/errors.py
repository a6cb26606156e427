"""The one place where errors become HTTP responses, in each protocol's own shape."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from sagelab.api.http import JSON_11, Response
from sagelab.errors import SagelabError


def render_error(error: SagelabError, protocol: str, request_id: str, resource: str = "") -> Response:
    code = error.code_for(protocol)
    message = error.message_for(protocol)
    base_headers = [("x-amzn-RequestId", request_id)]
    if protocol == "s3":
        fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in getattr(error, "fields", {}).items())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
                f"<Message>{escape(message)}</Message>{fields}"
                f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>")
        return Response(status=error.status, body=body.encode(), content_type="application/xml",
                        headers=[("x-amz-request-id", request_id), *getattr(error, "headers", ())])
    if protocol == "query":
        body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return Response(status=error.status, body=body.encode(), content_type="text/xml", headers=base_headers)
    if protocol in ("cbor", "json-1.0"):  # CloudWatch: awsQueryCompatible, so the query code rides in a header
        headers = base_headers + [("x-amzn-query-error", f"{error.code_for('query')};Sender")]
        if protocol == "cbor":
            import cbor2

            return Response(status=error.status, body=cbor2.dumps({"__type": code, "message": message}),
                            content_type="application/cbor", headers=headers + [("smithy-protocol", "rpc-v2-cbor")])
        return Response(status=error.status, body=json.dumps({"__type": code, "message": message}).encode(),
                         content_type="application/x-amz-json-1.0", headers=headers)
    payload: dict[str, object] = {"__type": code, "message": message}
    payload.update(getattr(error, "fields", {}))
    content_type = JSON_11 if protocol == "json" else "application/json"
    return Response(status=error.status, body=json.dumps(payload).encode(), content_type=content_type,
                    headers=base_headers + [("x-amzn-ErrorType", code)])
