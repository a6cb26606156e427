"""Asynchronous inference: InvokeEndpointAsync's durable queue and the worker that drains it.

Each accepted request is a `resources` row (kind `async-inference`) written before the 202 answer, so a
crash loses none: Pending -> InProgress (claimed by the worker in one transaction) -> Completed or Failed.
A server that starts alone puts its predecessor's InProgress rows back to Pending; with several servers on one
database, a claim's lease names the server that claimed it, and only a dead server's claims are put back
(`Platform.take_over_from`). The result is written to `<S3OutputPath>/<InferenceId>.out` (or
`<S3OutputPath>/<S3OutputPathExtension>/<Filename>`), a failure's message to
`<S3FailurePath>/<InferenceId>-error.out`, before the row is marked Completed or Failed; a request redone
after a crash writes the same object again, so each request's result appears once.

The worker reads the input from the lake and talks to the endpoint's instances over their sockets on
connections of its own (it runs on threads, not on the server's event loop), at most
MaxConcurrentInvocationsPerInstance requests per live instance. Every second it samples each asynchronous
endpoint's backlog (requests pending or in progress) into ApproximateBacklogSize and
ApproximateBacklogSizePerInstance (AWS/SageMaker, dimension EndpointName).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import json
import logging
import threading
import time
import uuid
from typing import Any

import numpy as np

from sagelab.errors import InvocationValidationError, S3Error, SagelabError
from sagelab.hosting import wire
from sagelab.hosting.async_config import AsyncConfig
from sagelab.hosting.fleet import Fleet, Route
from sagelab.hosting.invocation_metrics import NAMESPACE, InvocationMetrics
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri
from sagelab.storage import tables
from sagelab.storage.db import Database
from sagelab.storage.resources import LeaseLost, NotFound, Resource, ResourceStore

KIND = "async-inference"
PENDING, IN_PROGRESS, COMPLETED, FAILED = "Pending", "InProgress", "Completed", "Failed"
DEFAULT_TTL_SECONDS = 6 * 3600
DEFAULT_TIMEOUT_SECONDS = 900
#: Tries on instances that vanished mid-request (replaced, scaled in) before the request fails.
MAX_ATTEMPTS = 5
#: Finished rows are kept this long (for inspection), then pruned when a server starts.
KEEP_FINISHED_SECONDS = 24 * 3600
SAMPLE_SECONDS = 1.0
FLUSH_SECONDS = 10.0
WORKERS = 16

log = logging.getLogger(__name__)


class _NotPending(Exception):
    pass


class _Retry(Exception):
    """The request could not reach an instance this time; it goes back to the queue."""


class AsyncInferenceService:
    def __init__(self, *, resources: ResourceStore, blobs: BlobStore, fleet: Fleet, db: Database,
                 invocation_metrics: InvocationMetrics):
        self.resources = resources
        self.blobs = blobs
        self.fleet = fleet
        self.db = db
        self.invocation_metrics = invocation_metrics
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._inflight: collections.Counter[str] = collections.Counter()
        self._samples: dict[tuple[str, float, str], list[float]] = collections.defaultdict(list)
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # --- accepting requests (InvokeEndpointAsync) --------------------------------------------------------
    def submit(self, endpoint: str, route: Route, headers: dict[str, str]) -> dict[str, str]:
        """Queue one request durably; -> InferenceId, OutputLocation, FailureLocation."""
        assert route.async_inference is not None
        config = AsyncConfig.of(route.async_inference)
        location = headers.get("x-amzn-sagemaker-inputlocation")
        if not location:
            raise InvocationValidationError("InputLocation (header X-Amzn-SageMaker-InputLocation) is required: the "
                                            "s3:// URI of the request payload in the lake.")
        try:
            parse_s3_uri(location, field="InputLocation")
        except SagelabError as exc:
            raise InvocationValidationError(exc.message) from None
        ttl = _bounded_int(headers, "x-amzn-sagemaker-requestttlseconds", "RequestTTLSeconds", 60, 21600,
                           DEFAULT_TTL_SECONDS)
        timeout = _bounded_int(headers, "x-amzn-sagemaker-invocationtimeoutseconds", "InvocationTimeoutSeconds",
                               1, 3600, DEFAULT_TIMEOUT_SECONDS)
        request_id = str(uuid.uuid4())
        inference_id = headers.get("x-amzn-sagemaker-inference-id") or request_id
        # S3OutputPathExtension and Filename place the result; the failure keeps its fixed name.
        extension = headers.get("x-amzn-sagemaker-s3outputpathextension", "")
        output = config.output.join(*filter(None, (extension, headers.get("x-amzn-sagemaker-filename")
                                                   or f"{inference_id}.out")))
        failure = config.failure.join(f"{inference_id}-error.out")
        now = time.time()
        doc = {"EndpointName": endpoint, "InferenceId": inference_id, "InputLocation": location,
               "OutputLocation": str(output), "FailureLocation": str(failure),
               "ContentType": headers.get("x-amzn-sagemaker-content-type", ""),
               "Accept": headers.get("x-amzn-sagemaker-accept", ""),
               "CustomAttributes": headers.get("x-amzn-sagemaker-custom-attributes"),
               "ExpiresAt": now + ttl, "InvocationTimeoutSeconds": timeout, "Attempts": 0}
        # Not an AWS resource: the ARN column only has to be unique.
        self.resources.insert(KIND, f"{endpoint}/{request_id}", f"sagelab:async-inference:{request_id}", PENDING,
                              doc, created_at=now)
        self._wake.set()
        return {"InferenceId": inference_id, "OutputLocation": str(output), "FailureLocation": str(failure)}

    # --- life cycle ------------------------------------------------------------------------------------
    def requeue(self, left_by: str | None = None) -> None:
        """Put back what a stopped server had claimed but not finished: every server's claims, or those of
        the server `left_by` (a live server's claims are its own; a claim's lease names its server)."""
        for res in self.resources.left_behind(KIND, (IN_PROGRESS,), left_by):
            with contextlib.suppress(LeaseLost, NotFound):
                self.resources.update(KIND, res.name, _to_pending, lease=res.lease)

    def recover(self) -> None:
        """Prune old results and start the worker (what was left claimed is requeued by `requeue`)."""
        cutoff = time.time() - KEEP_FINISHED_SECONDS
        for res in self.resources.in_status(KIND, (COMPLETED, FAILED)):
            if res.modified_at < cutoff:
                self.resources.delete(KIND, res.name)
        self.start()

    def start(self) -> None:
        if self._thread is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="async-inference")
            self._thread = threading.Thread(target=self._run, name="async-inference-queue", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._pool is not None:
            # Requests still running are left InProgress: the next server puts them back in the queue.
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.flush_metrics()

    # --- the worker ------------------------------------------------------------------------------------
    def _run(self) -> None:
        last_sample = last_flush = 0.0
        sampled: tuple[dict[str, int], frozenset[str]] = ({}, frozenset())
        while not self._closing.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                backlog = self._dispatch()
                now = time.monotonic()
                # Also whenever the backlog or the endpoints changed: a queue that fills and drains within a
                # second (or that an endpoint's deployment drains at once) still shows.
                seen = (dict(backlog), frozenset(self.fleet.routes))
                if now - last_sample >= SAMPLE_SECONDS or seen != sampled:
                    last_sample, sampled = now, seen
                    self._sample(backlog)
                if now - last_flush >= FLUSH_SECONDS:
                    last_flush = now
                    self.flush_metrics()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the queue; the next turn retries
                log.exception("async inference queue turn failed")

    def _dispatch(self) -> collections.Counter[str]:
        """Claim what the endpoints have room for; -> each endpoint's backlog (pending and in progress)."""
        backlog: collections.Counter[str] = collections.Counter()
        rows = self.resources.in_status(KIND, (PENDING, IN_PROGRESS))
        for res in sorted(rows, key=lambda r: (r.created_at, r.name)):
            endpoint = res.doc["EndpointName"]
            backlog[endpoint] += 1
            if res.status != PENDING:
                continue
            route = self.fleet.routes.get(endpoint)
            if time.time() > res.doc["ExpiresAt"]:
                self._fail(res, "The request expired: its RequestTTLSeconds passed before an instance was free.")
                continue
            if route is None or route.async_inference is None:
                if self.resources.get("endpoint", endpoint) is None:
                    self._fail(res, f"Endpoint {endpoint} was deleted before the request was processed.")
                continue  # deploying or recovering: wait
            with self._lock:
                if self._inflight[endpoint] >= self._capacity(route):
                    continue
                self._inflight[endpoint] += 1
            try:
                claimed = self.resources.update(KIND, res.name, functools.partial(
                    _claim, lease=self.resources.new_lease()))
            except (_NotPending, NotFound):
                self._release(endpoint)
                continue
            assert self._pool is not None
            self._pool.submit(self._process, claimed)
        return backlog

    @staticmethod
    def _capacity(route: Route) -> int:
        assert route.async_inference is not None
        per_instance = AsyncConfig.of(route.async_inference).concurrency_per_instance
        live = sum(1 for v in route.variants.values() if v.weight > 0 for i in v.instances if i.alive)
        return per_instance * live

    def _release(self, endpoint: str) -> None:
        with self._lock:
            self._inflight[endpoint] -= 1
        self._wake.set()

    def _process(self, res: Resource) -> None:
        endpoint = res.doc["EndpointName"]
        try:
            self._invoke(res)
        except _Retry as exc:
            if res.doc["Attempts"] >= MAX_ATTEMPTS:
                self._fail(res, f"No instance of endpoint {endpoint} could serve the request after "
                                f"{MAX_ATTEMPTS} attempts: {exc}")
            else:
                self._update(res.name, _to_pending)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong is the request's failure, told to the user
            self._fail(res, f"{type(exc).__name__}: {exc}")
        finally:
            self._release(endpoint)

    def _invoke(self, res: Resource) -> None:
        doc = res.doc
        endpoint = doc["EndpointName"]
        started = time.perf_counter()
        source = parse_s3_uri(doc["InputLocation"], field="InputLocation")
        try:
            body = b"".join(self.blobs.read(source.bucket, source.key))
        except S3Error as exc:
            self._fail(res, f"Could not read InputLocation {doc['InputLocation']}: {exc.code}: {exc.message}")
            return
        route = self.fleet.routes.get(endpoint)
        if route is None:
            raise _Retry(f"endpoint {endpoint} has no serving instances")
        variant = route.choose(None)
        instance = variant.pick()
        if instance is None:
            raise _Retry(f"variant {variant.name} has no live instance")
        header = {"content_type": doc["ContentType"], "accept": doc["Accept"]}
        try:
            answer, payload = wire.exchange_blocking(instance.socket_path, header, body,
                                                     float(doc["InvocationTimeoutSeconds"]))
        except OSError as exc:  # includes ConnectionError and the socket's timeout
            raise _Retry(str(exc)) from exc
        status = int(answer["status"])
        recorded = status if status < 400 else (400 if status < 500 else 500)
        self.invocation_metrics.record(endpoint, variant.name, recorded, float(answer.get("model_seconds", 0.0)),
                                       time.perf_counter() - started, len(variant.instances))
        if status >= 400:
            self._fail(res, f"Received {'client' if status < 500 else 'server'} error ({status}) from primary with "
                            f"message \"{payload.decode('utf-8', 'replace')}\".")
            return
        target = parse_s3_uri(doc["OutputLocation"], field="OutputLocation")
        self.blobs.put(target.bucket, target.key, [payload], content_type=answer.get("content_type"))
        self._finish(res.name, COMPLETED)

    def _fail(self, res: Resource, message: str) -> None:
        target = parse_s3_uri(res.doc["FailureLocation"], field="FailureLocation")
        try:
            self.blobs.put(target.bucket, target.key, [message.encode()], content_type="text/plain")
        except S3Error as exc:
            message += f" (the failure could not be written to {target}: {exc.message})"
        self._finish(res.name, FAILED, message)

    def _finish(self, name: str, status: str, message: str | None = None) -> None:
        def done(res: Resource) -> None:
            res.status = status
            res.doc["FinishedAt"] = time.time()
            if message is not None:
                res.doc["FailureReason"] = message

        self._update(name, done)

    def _update(self, name: str, mutate) -> None:
        with contextlib.suppress(NotFound):
            self.resources.update(KIND, name, mutate)

    # --- backlog metrics -------------------------------------------------------------------------------
    def _sample(self, backlog: collections.Counter[str]) -> None:
        minute = float(int(time.time() // 60) * 60)
        with self._lock:
            for endpoint, route in list(self.fleet.routes.items()):
                if route.async_inference is None:
                    continue
                size = float(backlog.get(endpoint, 0))
                live = sum(1 for v in route.variants.values() for i in v.instances if i.alive)
                self._samples[(endpoint, minute, "ApproximateBacklogSize")].append(size)
                self._samples[(endpoint, minute, "ApproximateBacklogSizePerInstance")].append(size / max(1, live))

    def flush_metrics(self) -> int:
        with self._lock:
            samples, self._samples = self._samples, collections.defaultdict(list)
        rows = [_gauge_row(endpoint, minute, name, np.asarray(values))
                for (endpoint, minute, name), values in samples.items()]
        if rows:
            with self.db.write() as conn:
                conn.execute(tables.metric_points.insert(), rows)
        return len(rows)


def _claim(res: Resource, *, lease: str) -> None:
    if res.status != PENDING:
        raise _NotPending(res.name)
    res.status = IN_PROGRESS
    res.lease = lease
    res.doc["Attempts"] = int(res.doc.get("Attempts", 0)) + 1


def _to_pending(res: Resource) -> None:
    if res.status == IN_PROGRESS:
        res.status = PENDING


def _bounded_int(headers: dict[str, str], header: str, field: str, low: int, high: int, default: int) -> int:
    raw = headers.get(header)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvocationValidationError(f"{field} must be an integer from {low} to {high}, got {raw!r}.")
    return value


def _gauge_row(endpoint: str, minute: float, name: str, values: np.ndarray) -> dict[str, Any]:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"namespace": NAMESPACE, "metric_name": name, "dimensions": json.dumps({"EndpointName": endpoint}),
            "timestamp": minute, "sample_count": float(len(values)), "sum": float(values.sum()),
            "minimum": float(values.min()), "maximum": float(values.max()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "unit": "None"}

