"""Data capture: an endpoint config's DataCaptureConfig, and the requests and responses it records.

A captured invocation is one line of SageMaker's JSON Lines capture format in the lake, under
`<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl` (UTC, the hour of the
invocation). The invoke path only draws the sample and appends the raw bodies to a buffer; a flusher
thread encodes and writes them every `capture_flush_seconds`, and `close` writes what is left, so a
clean shutdown loses no captured invocation (a crash loses at most the last interval, as capture on AWS
is best effort too).

Encoding follows CaptureContentTypeHeader: a content type in CsvContentTypes is stored as text with
encoding CSV, one in JsonContentTypes as text with encoding JSON, anything else base64 (BASE64). Content
types are compared by media type, without parameters, so `text/csv; charset=utf-8` is CSV.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from sagelab.errors import S3Error, ValidationError
from sagelab.lake.blobs import BlobStore
from sagelab.lake.encryption import under_kms_key
from sagelab.lake.uris import S3Uri, parse_s3_uri

log = logging.getLogger(__name__)

CAPTURE_MODES = ("Input", "Output", "InputAndOutput")


@dataclasses.dataclass(frozen=True)
class CaptureSpec:
    """A DataCaptureConfig, validated once when the endpoint config is created."""

    enabled: bool
    sampling_percentage: int
    destination: S3Uri
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]
    kms_key_id: str = ""


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_capture_config(config: dict[str, Any], field: str = "DataCaptureConfig") -> CaptureSpec:
    percentage = config.get("InitialSamplingPercentage")
    if not isinstance(percentage, int) or not 0 <= percentage <= 100:
        raise ValidationError(f"{field}.InitialSamplingPercentage must be an integer from 0 to 100, got "
                              f"{percentage!r}.")
    destination = parse_s3_uri(config.get("DestinationS3Uri", ""), field=f"{field}.DestinationS3Uri")
    options = config.get("CaptureOptions") or []
    if not options:
        raise ValidationError(f"{field}.CaptureOptions must list at least one CaptureMode (Input, Output or "
                              "InputAndOutput), got none.")
    modes = set()
    for index, option in enumerate(options, start=1):
        mode = option.get("CaptureMode")
        if mode not in CAPTURE_MODES:
            raise ValidationError(f"{field}.CaptureOptions[{index}].CaptureMode must be one of "
                                  f"{', '.join(CAPTURE_MODES)}, got {mode!r}.")
        modes.add(mode)
    header = config.get("CaptureContentTypeHeader") or {}
    return CaptureSpec(
        enabled=bool(config.get("EnableCapture", True)), sampling_percentage=percentage, destination=destination,
        capture_input=bool(modes & {"Input", "InputAndOutput"}),
        capture_output=bool(modes & {"Output", "InputAndOutput"}),
        csv_types=frozenset(_media_type(t) for t in header.get("CsvContentTypes") or ()),
        json_types=frozenset(_media_type(t) for t in header.get("JsonContentTypes") or ()),
        kms_key_id=config.get("KmsKeyId") or "")


@dataclasses.dataclass(frozen=True)
class _Captured:
    """One sampled invocation, as the invoke path hands it over: raw bodies, encoded later."""

    spec: CaptureSpec
    endpoint: str
    variant: str
    at: float
    request_type: str
    request: bytes
    response_type: str
    response: bytes
    inference_id: str | None


def _encoded(spec: CaptureSpec, content_type: str, body: bytes, mode: str) -> dict[str, str]:
    media = _media_type(content_type)
    if media in spec.csv_types or media in spec.json_types:
        try:
            data, encoding = body.decode("utf-8"), "CSV" if media in spec.csv_types else "JSON"
        except UnicodeDecodeError:
            data, encoding = base64.b64encode(body).decode(), "BASE64"
    else:
        data, encoding = base64.b64encode(body).decode(), "BASE64"
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_line(spec: CaptureSpec, item: _Captured) -> str:
    """The JSON Lines record SageMaker writes for one captured invocation."""
    data: dict[str, Any] = {}
    if spec.capture_input:
        data["endpointInput"] = _encoded(spec, item.request_type, item.request, "INPUT")
    if spec.capture_output:
        data["endpointOutput"] = _encoded(spec, item.response_type, item.response, "OUTPUT")
    metadata = {"eventId": str(uuid.uuid4()),
                "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(item.at))
                + f".{int(item.at * 1000) % 1000:03d}Z"}
    if item.inference_id:
        metadata["inferenceId"] = item.inference_id
    return json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"},
                      separators=(",", ":"))


def capture_key(spec: CaptureSpec, endpoint: str, variant: str, at: float) -> S3Uri:
    """Where a file of invocations captured from `at` on goes (the hour folder of `at`, in UTC)."""
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(at))
    name = time.strftime("%M-%S", time.gmtime(at)) + f"-{int(at * 1000) % 1000:03d}-{uuid.uuid4()}.jsonl"
    return spec.destination.join(endpoint, variant, hour, name)


class DataCapture:
    """The capture settings of every serving endpoint, and the buffer of sampled invocations."""

    def __init__(self, *, blobs: BlobStore, flush_seconds: float):
        self.blobs = blobs
        self.flush_seconds = flush_seconds
        #: Endpoint -> its capture spec; replaced, never mutated, so the event loop reads it without a lock.
        self._specs: dict[str, CaptureSpec] = {}
        self._lock = threading.Lock()
        self._buffer: list[_Captured] = []
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._random = random.Random()

    # --- configuration (deployments) ------------------------------------------------------------------
    def configure(self, endpoint: str, config: dict[str, Any] | None) -> None:
        """Capture for `endpoint` as its endpoint config's DataCaptureConfig says (None: none)."""
        specs = dict(self._specs)
        try:
            spec = parse_capture_config(config) if config else None
        except ValidationError as exc:  # checked when the config was made; a deployment must not fail on it
            log.warning("endpoint %s captures nothing: %s", endpoint, exc.message)
            spec = None
        if spec is not None and spec.enabled:
            specs[endpoint] = spec
            self._start_flusher()
        else:
            specs.pop(endpoint, None)
        self._specs = specs

    def remove(self, endpoint: str) -> None:
        self.configure(endpoint, None)

    # --- the invoke path -------------------------------------------------------------------------------
    def record(self, endpoint: str, variant: str, request_type: str, request: bytes, response_type: str,
               response: bytes, inference_id: str | None = None) -> None:
        spec = self._specs.get(endpoint)
        if spec is None or self._random.random() * 100 >= spec.sampling_percentage:
            return
        item = _Captured(spec, endpoint, variant, time.time(), request_type, request, response_type, response,
                         inference_id)
        with self._lock:
            self._buffer.append(item)

    # --- writing ------------------------------------------------------------------------------------------
    def flush(self) -> int:
        """Write every buffered invocation; returns how many were written."""
        with self._lock:
            items, self._buffer = self._buffer, []
        # One file per endpoint, variant, hour and spec: an invocation is written under the spec it was
        # sampled under, even if the endpoint was updated or deleted since.
        files: dict[tuple[str, str, str, CaptureSpec], list[_Captured]] = defaultdict(list)
        for item in items:
            hour = time.strftime("%Y%m%d%H", time.gmtime(item.at))
            files[(item.endpoint, item.variant, hour, item.spec)].append(item)
        written = 0
        for (endpoint, variant, _, spec), batch in files.items():
            body = "".join(capture_line(spec, item) + "\n" for item in batch).encode()
            target = capture_key(spec, endpoint, variant, batch[0].at)
            try:
                self.blobs.put(target.bucket, target.key, [body], content_type="application/jsonlines",
                               encryption=under_kms_key(spec.kms_key_id))
            except S3Error as exc:
                log.warning("data capture for endpoint %s could not write %s: %s", endpoint, target, exc.message)
                continue
            written += len(batch)
        return written

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None or self._stop.is_set():
                return
            self._flusher = threading.Thread(target=self._flush_every_interval, name="data-capture-flush",
                                             daemon=True)
            self._flusher.start()

    def _flush_every_interval(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # keep capturing: one bad write must not stop the flusher
                log.exception("data capture flush failed")

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=30)
        self.flush()
