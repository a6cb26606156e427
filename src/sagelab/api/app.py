"""The ASGI application: one port for every AWS face sagelab answers.

Each request is authenticated (SigV4, on by default), routed by the service named in its credential
scope to a `Face`, resolved by that face to the operation it asks for (recorded on the request), admitted
by the app's guards, and answered. Resolving is a step of its own, before any handler runs, so that a guard
(an IAM enforcer, say) sees the operation and its parameters first. Handlers are synchronous (they touch the
database and files) and run on worker threads, unless a face answers with a coroutine. Errors become
responses in exactly one place: `api.errors.render_error`.

After the answer (or the refusal) is made and before it is sent, every observer sees how the call ended
(CloudTrail records it there). An observer that must finish before the client may see the answer returns a
blocking wait, which runs on a worker thread, off the event loop.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread

from sagelab.api.errors import render_error
from sagelab.api.http import Request, Response
from sagelab.api.operations import Call, Operation, OperationTable
from sagelab.api.unanswered import protocol_of, unanswered_service
from sagelab.errors import InternalError, SagelabError
from sagelab.security.sigv4 import SignedRequest, SigV4Verifier, service_of

HEALTH_PATH = "/_sagelab/health"
#: The web console's pages: not signed with SigV4, they carry the console's own session (see console/).
CONSOLE_PATH = "/console"


class Face(Protocol):
    """One AWS API face. `protocol` selects the error shape: json, rest-json, s3 or query.

    `resolve` reads which of the face's `operations` a request asks for, with its parameters, and runs
    nothing; `answer` runs that operation's handler. An `answer` that is a coroutine function answers on the
    event loop, any other on a worker thread. A face may also offer `face_for(request)` when one signing name
    covers two faces (SageMaker and sagemaker-runtime), and `preflight(request)` to answer a CORS preflight
    (`OPTIONS`), which carries no credentials and names no operation (S3).
    """

    protocol: str
    operations: OperationTable[Any]

    def resolve(self, request: Request) -> Call: ...

    def answer(self, call: Call, request: Request) -> Response | Awaitable[Response]: ...


#: Called with each request, its operation and its parameters before the handler runs; raises a
#: `SagelabError` to refuse the call (an IAM enforcer, a rate limiter, ...).
Guard = Callable[[Request, Operation[Any], Mapping[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class Answered:
    """How one call ended, for observers: the request (its `call` is None when it was refused before it was
    resolved), the table of the face that answered, the response, and the error code and message if any."""

    request: Request
    table: OperationTable[Any] | None
    response: Response
    error_code: str | None = None
    error_message: str | None = None

    @property
    def call(self) -> Call | None:
        return self.request.call

    @property
    def status(self) -> int:
        return self.response.status


#: Called with every answered or refused call before its answer is sent. It returns None, or a blocking
#: wait (run on a worker thread) that the answer waits for: an audit record that must be durable first.
Observer = Callable[[Answered], "Callable[[], object] | None"]


class SagelabApp:
    def __init__(self, faces: dict[str, Face], verifier: SigV4Verifier | None, *, default_region: str,
                 account_id: str, on_shutdown: Callable[[], None] | None = None,
                 guards: Sequence[Guard] = (), observers: Sequence[Observer] = ()):
        self.faces = faces
        self.on_shutdown = on_shutdown
        self.verifier = verifier
        self.default_region = default_region
        self.account_id = account_id
        self.guards = tuple(guards)
        self.observers = tuple(observers)
        #: The ASGI app answering `/console/...`, set by whoever builds the console on this app.
        self.console: Callable[..., Awaitable[None]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not part of any AWS face
            return
        received_at = time.perf_counter()
        request_id = str(uuid.uuid4())
        if scope["path"] == HEALTH_PATH:
            await self._send(send, Response(body=b'{"status":"ok"}', content_type="application/json"), request_id)
            return
        if self.console is not None and (scope["path"] == CONSOLE_PATH or scope["path"].startswith(CONSOLE_PATH + "/")):
            await self.console(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = Request(method=scope["method"], raw_path=scope.get("raw_path", scope["path"].encode()).decode(
            "latin-1").split("?", 1)[0], raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers, body=bytes(body), request_id=request_id, account_id=self.account_id,
            region=self.default_region, received_at=received_at, client_ip=(scope.get("client") or ("",))[0],
            secure_transport=scope.get("scheme") == "https")
        service = service_of(headers, request.raw_query) or self._guess_service(request)
        face = self.faces.get(service)
        if face is not None and hasattr(face, "face_for"):
            face = face.face_for(request)
        protocol = protocol_of(service) if face is None else face.protocol
        failure: SagelabError | None = None
        try:
            if request.method == "OPTIONS" and hasattr(face, "preflight"):
                # A browser's CORS preflight carries no credentials and names no operation: the face answers it.
                response = await anyio.to_thread.run_sync(face.preflight, request)
            else:
                self._authenticate(request)
                if face is None:
                    raise unanswered_service(service, request)
                if inspect.iscoroutinefunction(face.answer):
                    response = await face.answer(self.admit(face, request), request)
                else:
                    response = await anyio.to_thread.run_sync(self._answer, face, request)
        except SagelabError as error:
            failure = error
            response = render_error(error, protocol, request_id, request.path)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected failures become a 500
            traceback.print_exc(file=sys.stderr)
            failure = InternalError(f"Internal error: {type(exc).__name__}: {exc}")
            response = render_error(failure, protocol, request_id, request.path)
        if self.observers:
            await self._observe(Answered(request, None if face is None else face.operations, response,
                                         None if failure is None else failure.code_for(protocol),
                                         None if failure is None else failure.message))
        await self._send(send, response, request_id)

    async def _observe(self, answered: Answered) -> None:
        for observer in self.observers:
            try:
                wait = observer(answered)
                if wait is not None:
                    await anyio.to_thread.run_sync(wait)
            except Exception:  # noqa: BLE001 - an observer's failure is reported, never the client's
                traceback.print_exc(file=sys.stderr)

    def admit(self, face: Face, request: Request) -> Call:
        """Resolve the request to its operation, record it on the request, and let every guard see it."""
        call = face.resolve(request)
        request.operation = call.operation
        request.call = call
        for guard in self.guards:
            guard(request, call.operation, call.params)
        if call.invalid_input is not None:
            raise call.invalid_input
        return call

    def _answer(self, face: Face, request: Request) -> Response:
        """Resolve, admit and answer on one worker thread: parsing a large body stays off the event loop."""
        return face.answer(self.admit(face, request), request)

    def _authenticate(self, request: Request) -> None:
        """Verify the signature (unless auth is off) and take the region from the credential scope."""
        if self.verifier is not None:
            request.principal = self.verifier.verify(SignedRequest(
                method=request.method, host=request.headers.get("host", ""), raw_path=request.raw_path,
                raw_query=request.raw_query, headers=request.headers, body=request.body))
            request.region = request.principal.region
        elif service_of(request.headers) is not None:
            request.region = request.headers["authorization"].split("Credential=")[1].split("/")[2]

    @staticmethod
    def _guess_service(request: Request) -> str:
        """For unsigned requests (auth turned off): JSON targets name their service, the rest is S3."""
        target = request.headers.get("x-amz-target", "")
        prefixes = {"SageMaker": "sagemaker", "AWSGlue": "glue", "AmazonAthena": "athena", "Logs_20140328": "logs",
                    "Kinesis_20131202": "kinesis", "Firehose_20150804": "firehose",
                    "KinesisAnalytics_20150814": "kinesisanalytics", "TrentService": "kms",
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
                    "GraniteServiceVersion20100801": "monitoring", "AmazonDMSv20160101": "dms",
                    "AnyScaleFrontendService": "application-autoscaling"}
        if request.path.startswith("/service/GraniteServiceVersion20100801/"):  # CloudWatch's RPC v2 CBOR
            return "monitoring"
        if not target:
            return "s3"
        return prefixes.get(target.rpartition(".")[0]) or prefixes.get(target.split(".", 1)[0], "s3")

    async def _send(self, send: Any, response: Response, request_id: str) -> None:
        headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers]
        names = {k for k, _ in headers}
        if response.content_type and b"content-type" not in names:
            headers.append((b"content-type", response.content_type.encode()))
        if b"x-amzn-requestid" not in names:
            headers.append((b"x-amzn-requestid", request_id.encode()))
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            if b"content-length" not in names:
                headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        iterator = iter(body)
        while True:
            chunk = await anyio.to_thread.run_sync(next, iterator, None)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # uvicorn re-raises SIGTERM once the app is done, so this is the last chance to save state.
                if self.on_shutdown is not None:
                    await anyio.to_thread.run_sync(self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

