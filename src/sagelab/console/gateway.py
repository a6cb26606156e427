"""Calls the API faces in-process, as the console's signed-in principal.

A console page does not reach into services: it resolves, admits and answers an operation through the very
face, guards (IAM) and observers (CloudTrail) that a SigV4 request would meet, with the principal the
session names. What is refused to the access key over the wire is refused in the console too.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from sagelab.api.app import Answered, SagelabApp
from sagelab.api.http import Request, Response
from sagelab.errors import SagelabError
from sagelab.security.sigv4 import Principal

#: Signing name -> (X-Amz-Target prefix, content type) of the JSON faces the console reads.
JSON_TARGETS = {"sagemaker": ("SageMaker", "application/x-amz-json-1.1"),
                "athena": ("AmazonAthena", "application/x-amz-json-1.1"),
                "logs": ("Logs_20140328", "application/x-amz-json-1.1"),
                "monitoring": ("GraniteServiceVersion20100801", "application/x-amz-json-1.0")}

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class Gateway:
    """One principal's view of the API: `json(service, operation, params)` and the few S3 reads."""

    def __init__(self, app: SagelabApp, access_key_id: str, client_ip: str = "", secure: bool = False):
        self.app = app
        self.access_key_id = access_key_id
        self.client_ip = client_ip
        self.secure = secure

    def json(self, service: str, operation: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        target, content_type = JSON_TARGETS[service]
        response = self._call(service, "POST", "/", "", {"x-amz-target": f"{target}.{operation}",
                                                         "content-type": content_type},
                              json.dumps(dict(params or {})).encode())
        return json.loads(_body(response) or b"{}")

    def list_buckets(self) -> list[str]:
        root = ET.fromstring(_body(self._call("s3", "GET", "/", "", {}, b"")))
        return [el.text or "" for el in root.iter(f"{_S3_NS}Name")]

    def list_objects(self, bucket: str, prefix: str) -> tuple[list[str], list[tuple[str, int, str]]]:
        """-> (common prefixes, [(key, size, last modified)]) one level below `prefix`."""
        prefixes: list[str] = []
        objects: list[tuple[str, int, str]] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "delimiter": "/"}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(_body(self._call("s3", "GET", "/" + quote(bucket), urlencode(query), {}, b"")))
            prefixes += [el.findtext(f"{_S3_NS}Prefix") or "" for el in root.iter(f"{_S3_NS}CommonPrefixes")]
            objects += [(el.findtext(f"{_S3_NS}Key") or "", int(el.findtext(f"{_S3_NS}Size") or 0),
                         el.findtext(f"{_S3_NS}LastModified") or "") for el in root.iter(f"{_S3_NS}Contents")]
            token = root.findtext(f"{_S3_NS}NextContinuationToken")
            if root.findtext(f"{_S3_NS}IsTruncated") != "true" or not token:
                return prefixes, objects

    def get_object(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        headers = {"range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        return _body(self._call("s3", "GET", f"/{quote(bucket)}/{quote(key)}", "", headers, b""))

    def _call(self, service: str, method: str, raw_path: str, raw_query: str, headers: dict[str, str],
              body: bytes) -> Response:
        app = self.app
        headers = {"host": "console.sagelab", "user-agent": "sagelab-console", **headers}
        request = Request(method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=body,
                          request_id=str(uuid.uuid4()), account_id=app.account_id, region=app.default_region,
                          received_at=time.perf_counter(), client_ip=self.client_ip, secure_transport=self.secure)
        if app.verifier is not None:  # with auth off there is no caller to hold to a policy, as over the wire
            request.principal = Principal(self.access_key_id, app.default_region, service)
        face = app.faces[service]
        if hasattr(face, "face_for"):
            face = face.face_for(request)
        try:
            response = face.answer(app.admit(face, request), request)
        except SagelabError as error:
            self._observe(request, face, Response(status=error.status), error)
            raise
        self._observe(request, face, response, None)
        if response.status >= 400:  # an S3 handler may answer an error itself
            raise ConsoleCallFailed(response.status, _body(response).decode("utf-8", "replace")[:500])
        return response

    def _observe(self, request: Request, face: Any, response: Response, failure: SagelabError | None) -> None:
        answered = Answered(request, face.operations, response,
                            None if failure is None else failure.code_for(face.protocol),
                            None if failure is None else failure.message)
        for observer in self.app.observers:
            try:
                wait = observer(answered)
                if wait is not None:
                    wait()
            except Exception:  # noqa: BLE001 - an observer's failure is reported, never the user's
                traceback.print_exc(file=sys.stderr)


class ConsoleCallFailed(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


def _body(response: Response) -> bytes:
    if isinstance(response.body, (bytes, bytearray)):
        return bytes(response.body)
    return b"".join(response.body)
