"""What runs inside a transform job's process: load the model once, then turn every input object into
exactly one output object, `<S3OutputPath>/<relative key>.out`.

Objects are read as a stream and cut into requests (see `batching`); up to MaxConcurrentTransforms requests
are answered at once on a thread pool while the next ones are read and earlier answers are written, in
order, straight into the output object. Every write to the job's document is fenced by its lease: once the
job is stopped (or a restarted server has settled it), this process can no longer change it. Failures are
raised with SageMaker's prefixes ("ClientError:" for bad input or a record the model rejects,
"AlgorithmError:" for the rest); the service records them as the FailureReason.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO, TypeVar

from sagelab.algorithms.base import InferenceError, Predictor, split_content_type
from sagelab.errors import S3Error, SagelabError, ValidationError
from sagelab.hosting.artifacts import ModelLoadError, load_predictor
from sagelab.hosting.models import StoredModels
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.jobs.process import JobFailure, JobRun, run_in_job_process
from sagelab.lake.blobs import BlobStore
from sagelab.lake.encryption import under_kms_key
from sagelab.transform import states
from sagelab.transform.batching import (
    BadRecord,
    Batch,
    Record,
    group,
    line_at,
    line_chunks,
    line_span,
    lines,
    recordio_batches,
    whole_object,
)
from sagelab.transform.data_processing import RecordProcessor
from sagelab.transform.inputs import InputError, InputObject, list_input_objects, read_object
from sagelab.transform.service import TRANSFORM_JOB
from sagelab.transform.spec import TransformJobSpec, parse_transform_job

T = TypeVar("T")
R = TypeVar("R")


def run_transform_job(log: TextIO, *, settings: dict[str, Any], job_name: str, lease: str) -> None:
    run_in_job_process(log, settings, lambda parts: TransformRun(parts, job_name, lease, log).run())


class TransformRun(JobRun):
    kind = TRANSFORM_JOB

    def run(self) -> None:
        resource = self.parts.resources.get(states.KIND, self.job_name)
        try:
            spec = parse_transform_job(resource.doc["_Request"],
                                       StoredModels(self.parts.resources, self.parts.account))
        except ValidationError as exc:
            raise JobFailure(f"ClientError: {exc.message}") from exc
        self._update(states.start)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        try:
            # A transform job acts as its model's execution role, when that is one of this server's roles.
            role = RoleAccess.for_role(self.parts.resources, self.parts.account,
                                       spec.model_doc.get("ExecutionRoleArn"))
            predictor = self._load_model(spec, role)
            try:
                if role is not None:
                    role.require_read(self.parts.blobs, spec.input.uri)
                objects = list_input_objects(self.parts.blobs, spec.input)
                if role is not None:
                    for obj in objects:
                        role.require_write(obj.output_uri(spec.output.path))
                self.parts.blobs.head_bucket(spec.output.path.bucket)
            except (InputError, RoleAccessDenied) as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
            except S3Error as exc:
                raise JobFailure(f"ClientError: cannot write to TransformOutput.S3OutputPath "
                                 f"{spec.output.path}: {exc.message}") from exc
            self._say(f"transforming {len(objects)} object(s) from {spec.input.uri} with model {spec.model_name} "
                      f"({spec.batch_strategy}, SplitType {spec.input.split_type}, MaxPayloadInMB "
                      f"{spec.max_payload_mb}, MaxConcurrentTransforms {spec.max_concurrent})")
            with ThreadPoolExecutor(spec.max_concurrent, thread_name_prefix="transform") as pool:
                transform = ObjectTransform(spec, predictor, self.parts.blobs, pool)
                for obj in objects:
                    self._check_lease()
                    started = time.perf_counter()
                    size = transform.run(obj)
                    self._say(f"{obj.uri} -> {obj.output_uri(spec.output.path)} ({size} bytes, "
                              f"{time.perf_counter() - started:.3f} s)")
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self._update(lambda res: states.finish(res, "Completed"))

    def _load_model(self, spec: TransformJobSpec, role: RoleAccess | None) -> Predictor:
        threads = max(1, (os.cpu_count() or 1) // spec.max_concurrent)
        try:
            return load_predictor(self.parts.blobs, self.parts.algorithms, spec.model_doc,
                                  self.work_dir / "model", threads=threads, cache_dir=self.parts.home.cache,
                                  role=role)
        except (ModelLoadError, ValidationError) as exc:
            raise JobFailure(f"ClientError: model {spec.model_name!r} cannot be loaded: {exc}") from exc


class ObjectTransform:
    """Turns one input object into its output object; shared by every object of a job."""

    def __init__(self, spec: TransformJobSpec, predictor: Predictor, blobs: BlobStore, pool: ThreadPoolExecutor):
        self.spec = spec
        self.predictor = predictor
        self.blobs = blobs
        self.pool = pool
        # Requests in flight: one per worker, plus two read ahead so no worker waits for the reader.
        self.window = spec.max_concurrent + 2
        self.processor = (RecordProcessor(spec.data_processing, spec.input.record_format)
                          if spec.data_processing.active else None)
        #: RecordIO batches count records, not lines; a request is their frames back to back.
        self.recordio = spec.input.split_type == "RecordIO"
        self.unit = "record" if self.recordio else "line"

    def run(self, obj: InputObject) -> int:
        target = obj.output_uri(self.spec.output.path)
        answers = ordered_map(self.pool, lambda batch: self._answer(obj, batch), self._batches(obj), self.window)
        try:
            info = self.blobs.put(target.bucket, target.key, answers, content_type=self.spec.output.accept or None,
                                  encryption=under_kms_key(self.spec.output.kms_key_id))
        except BadRecord as exc:
            line = exc.line if exc.line is not None else self._line_at(obj, exc.offset)
            raise JobFailure(f"ClientError: {obj.uri}, {self.unit} {line}: {exc.message}") from exc
        except InputError as exc:
            raise JobFailure(f"ClientError: {exc}") from exc
        except S3Error as exc:
            raise JobFailure(f"ClientError: cannot write the output {target}: {exc.message}") from exc
        return info.size

    # --- requests -----------------------------------------------------------------------------------
    def _batches(self, obj: InputObject) -> Iterator[Batch]:
        spec = self.spec
        limit = spec.max_payload_bytes
        pieces = read_object(self.blobs, obj, spec.input.compression, piece_size=limit)
        whole = spec.input.split_type == "None"
        single = spec.batch_strategy == "SingleRecord"
        if self.recordio:
            return recordio_batches(pieces, limit, single=single)
        if self.processor is None:
            if whole:
                return whole_object(pieces, limit)
            return group(lines(pieces), limit=limit, single=True) if single else line_chunks(pieces, limit)
        options = {"payload": self.processor.request_payload,
                   "keep_records": not self.processor.passes_output_through}
        if whole:  # every record of the object in one request
            return _within(group(self._object_records(pieces), limit=None, single=False, **options), limit)
        return group(lines(pieces), limit=limit, single=single, **options)

    def _object_records(self, pieces: Iterable[bytes]) -> Iterable[Record]:
        """The records of an unsplit object: one JSON document, or its lines (CSV, JSON Lines)."""
        if split_content_type(self.spec.input.content_type)[0] == "application/json":
            body = b"".join(pieces).strip()
            return [Record(1, body)] if body else []
        return lines(pieces)

    # --- answers (on the pool's threads) ------------------------------------------------------------
    def _answer(self, obj: InputObject, batch: Batch) -> bytes:
        body, content_type = self._invoke(obj, batch)
        if self.processor is not None and body:
            body = self.processor.output(batch.records, body, content_type)
        if self.spec.output.assemble_with == "Line" and body and not body.endswith(b"\n"):
            body += b"\n"
        return body

    def _invoke(self, obj: InputObject, batch: Batch) -> tuple[bytes, str]:
        try:
            return self._call(batch.body)
        except InferenceError as exc:
            raise JobFailure(self._rejection(obj, batch, exc)) from None
        except SagelabError as exc:
            raise JobFailure(f"ClientError: {obj.uri}, {self._where(obj, batch)}: {exc.message}") from None
        except Exception as exc:  # noqa: BLE001 - whatever the algorithm raised is the reason
            raise JobFailure(f"AlgorithmError: {obj.uri}, {self._where(obj, batch)}: {type(exc).__name__}: "
                             f"{exc}") from None

    def _call(self, body: bytes) -> tuple[bytes, str]:
        try:
            return self.predictor.invoke(body, self.spec.input.content_type, self.spec.output.accept)
        except InferenceError as exc:
            if exc.status == 204:  # nothing to predict (blank lines): nothing to write
                return b"", self.spec.output.accept
            raise

    # --- naming lines in errors (counted only when an error needs them) -------------------------------
    def _line_at(self, obj: InputObject, offset: int) -> int:
        return line_at(read_object(self.blobs, obj, self.spec.input.compression), offset)

    def _first_line(self, obj: InputObject, batch: Batch) -> int:
        return batch.first_line if batch.first_line is not None else self._line_at(obj, batch.offset)

    def _where(self, obj: InputObject, batch: Batch) -> str:
        first = self._first_line(obj, batch)
        last = batch.records[-1].line if batch.records else first + max(1, line_span(batch.body)) - 1
        return f"{self.unit} {first}" if first == last else f"{self.unit}s {first}-{last}"

    def _rejection(self, obj: InputObject, batch: Batch, error: InferenceError) -> str:
        """The FailureReason for a rejected request, narrowed down to the first record the model rejects."""
        if self.recordio:
            records = [(record.line, record.data) for record in batch.records]
        else:
            records = _request_records(batch, self._first_line(obj, batch))
        line, found = _first_rejected(self._call, records, separator=b"" if self.recordio else b"\n")
        if found is not None:
            error = found
        where = f"{self.unit} {line}" if line is not None else self._where(obj, batch)
        return (f"ClientError: {obj.uri}, {where}: the model rejected the record (status {error.status}): "
                f"{error.message}")


def _request_records(batch: Batch, first_line: int) -> list[tuple[int, bytes]]:
    """(line number, payload) of each record in a request, in order."""
    if batch.records:
        payloads = [batch.body] if len(batch.records) == 1 else batch.body.split(b"\n")
        return [(record.line, payload) for record, payload in zip(batch.records, payloads, strict=False)]
    return [(first_line + offset, line) for offset, line in enumerate(batch.body.split(b"\n")) if line.strip()]


def _first_rejected(call: Callable[[bytes], Any], records: list[tuple[int, bytes]], *,
                    separator: bytes = b"\n") -> tuple[int | None, InferenceError | None]:
    """Bisect a rejected request for its first rejected record: (its line, the model's error for it alone).
    Records are sent joined by `separator` (and ended by it): newlines, or nothing for recordIO frames."""
    if len(records) == 1:
        return records[0][0], None

    def rejects(part: list[tuple[int, bytes]]) -> InferenceError | None:
        try:
            call(separator.join(payload for _, payload in part) + separator)
        except InferenceError as exc:
            return exc
        return None

    low, high = 0, len(records)
    while high - low > 1:
        middle = (low + high) // 2
        if rejects(records[low:middle]) is not None:
            high = middle
        else:
            low = middle
    error = rejects(records[low:high])
    return (records[low][0], error) if error is not None else (None, None)


def _within(batches: Iterable[Batch], limit: int | None) -> Iterator[Batch]:
    for batch in batches:
        if limit is not None and len(batch.body) > limit:
            raise BadRecord(f"the object's request is {len(batch.body)} bytes, larger than MaxPayloadInMB "
                            f"({limit // (1024 * 1024)} MB), and SplitType None sends it whole; use SplitType Line "
                            "or raise MaxPayloadInMB (0 means no limit)", line=batch.first_line)
        yield batch


def ordered_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    """fn over items on `pool`, at most `window` at once, results in order as soon as each is ready."""
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
