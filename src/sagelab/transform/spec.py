"""A CreateTransformJob request, validated once into a typed spec.

The API layer has already checked the wire shapes (required members, types, enums, patterns) against
botocore's model; this module checks what only sagelab knows: that the model exists, which split types,
data sources and filters are supported, and the payload limits. Values the request leaves out are
resolved the way SageMaker resolves them for its built-in algorithm containers, whose
`/execution-parameters` answer MultiRecord batches of up to 6 MB and one worker per CPU core.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Protocol

from sagelab.algorithms.base import split_content_type
from sagelab.errors import ValidationError
from sagelab.lake.uris import S3Uri, parse_s3_uri
from sagelab.storage.resources import Resource
from sagelab.transform.jsonpath import JsonPath, parse_jsonpath

DEFAULT_MAX_PAYLOAD_MB = 6
#: SageMaker refuses a payload limit (times the concurrency) above this.
LARGEST_PAYLOAD_MB = 100
MB = 1024 * 1024

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")


class ModelLookup(Protocol):
    def get(self, name: str) -> Resource: ...


@dataclasses.dataclass(frozen=True)
class TransformInput:
    uri: S3Uri
    data_type: str  # S3Prefix | ManifestFile
    content_type: str  # as the request gave it ("" when absent): sent to the model as is
    compression: str  # None | Gzip
    split_type: str  # None | Line | RecordIO

    @property
    def record_format(self) -> str:
        """'csv', 'json' or '' (opaque): how DataProcessing reads a record."""
        main, _ = split_content_type(self.content_type)
        if main in CSV_TYPES:
            return "csv"
        if main in JSON_TYPES:
            return "json"
        return ""


@dataclasses.dataclass(frozen=True)
class TransformOutput:
    path: S3Uri
    accept: str  # "" when absent: the model's default
    assemble_with: str  # None | Line
    #: TransformOutput.KmsKeyId: results are written with SSE-KMS under it ("" for none).
    kms_key_id: str = ""


@dataclasses.dataclass(frozen=True)
class DataProcessing:
    input_filter: JsonPath | None
    output_filter: JsonPath | None
    join_input: bool

    @property
    def active(self) -> bool:
        return self.input_filter is not None or self.output_filter is not None or self.join_input


@dataclasses.dataclass(frozen=True)
class TransformJobSpec:
    name: str
    model_name: str
    model_doc: dict[str, Any]
    input: TransformInput
    output: TransformOutput
    batch_strategy: str  # MultiRecord | SingleRecord
    max_payload_mb: int  # 0 means no limit
    max_concurrent: int
    environment: dict[str, str]
    data_processing: DataProcessing

    @property
    def max_payload_bytes(self) -> int | None:
        return self.max_payload_mb * MB if self.max_payload_mb else None


def default_concurrency() -> int:
    """What the built-in containers' `/execution-parameters` answer: one worker per CPU core."""
    return os.cpu_count() or 1


def parse_transform_job(params: dict[str, Any], models: ModelLookup) -> TransformJobSpec:
    model_name = params["ModelName"]
    try:
        model = models.get(model_name)
    except ValidationError as exc:
        raise ValidationError(f"ModelName {model_name!r}: {exc.message} Create the model with CreateModel "
                              "first.") from None
    transform_input = _parse_input(params["TransformInput"])
    output = params.get("TransformOutput") or {}
    if not output.get("S3OutputPath"):
        raise ValidationError("TransformOutput.S3OutputPath is required.")
    transform_output = TransformOutput(
        path=parse_s3_uri(output["S3OutputPath"], field="TransformOutput.S3OutputPath"),
        accept=output.get("Accept") or "", assemble_with=output.get("AssembleWith") or "None",
        kms_key_id=output.get("KmsKeyId") or "")
    if transform_output.assemble_with not in ("None", "Line"):
        raise ValidationError(f"TransformOutput.AssembleWith {transform_output.assemble_with!r} is not valid: "
                              "use None or Line.")

    batch_strategy = params.get("BatchStrategy") or "MultiRecord"
    if batch_strategy not in ("MultiRecord", "SingleRecord"):
        raise ValidationError(f"BatchStrategy {batch_strategy!r} is not valid: use MultiRecord or SingleRecord.")
    max_payload = params.get("MaxPayloadInMB")
    max_payload_mb = DEFAULT_MAX_PAYLOAD_MB if max_payload is None else int(max_payload)
    if not 0 <= max_payload_mb <= LARGEST_PAYLOAD_MB:
        raise ValidationError(f"MaxPayloadInMB must be between 0 (no limit) and {LARGEST_PAYLOAD_MB}, "
                              f"got {max_payload_mb}.")
    max_concurrent = int(params.get("MaxConcurrentTransforms") or 0)
    if max_concurrent < 0:
        raise ValidationError(f"MaxConcurrentTransforms must be >= 0, got {max_concurrent}.")
    if max_concurrent and max_concurrent * max_payload_mb > LARGEST_PAYLOAD_MB:
        raise ValidationError(f"MaxConcurrentTransforms ({max_concurrent}) times MaxPayloadInMB "
                              f"({max_payload_mb}) must not exceed {LARGEST_PAYLOAD_MB} MB.")
    if not max_concurrent:
        max_concurrent = default_concurrency()

    data_processing = _parse_data_processing(params.get("DataProcessing") or {}, transform_input)
    return TransformJobSpec(
        name=params["TransformJobName"], model_name=model_name, model_doc=model.doc, input=transform_input,
        output=transform_output, batch_strategy=batch_strategy, max_payload_mb=max_payload_mb,
        max_concurrent=max_concurrent, environment=dict(params.get("Environment") or {}),
        data_processing=data_processing)


def _parse_input(raw: dict[str, Any]) -> TransformInput:
    source = (raw.get("DataSource") or {}).get("S3DataSource")
    if not source:
        raise ValidationError("TransformInput.DataSource.S3DataSource is required.")
    data_type = source.get("S3DataType") or "S3Prefix"
    if data_type not in ("S3Prefix", "ManifestFile"):
        raise ValidationError(f"TransformInput S3DataType {data_type!r} is not supported; use S3Prefix or "
                              "ManifestFile.")
    compression = raw.get("CompressionType") or "None"
    if compression not in ("None", "Gzip"):
        raise ValidationError(f"TransformInput.CompressionType {compression!r} is not valid: use None or Gzip.")
    split_type = raw.get("SplitType") or "None"
    if split_type == "TFRecord":
        raise ValidationError(f"TransformInput.SplitType {split_type!r} is not supported yet; use None, Line or "
                              "RecordIO.")
    if split_type not in ("None", "Line", "RecordIO"):
        raise ValidationError(f"TransformInput.SplitType {split_type!r} is not valid: use None, Line or RecordIO.")
    return TransformInput(uri=parse_s3_uri(source["S3Uri"], field="TransformInput.DataSource.S3DataSource.S3Uri"),
                          data_type=data_type, content_type=raw.get("ContentType") or "",
                          compression=compression, split_type=split_type)


def _parse_data_processing(raw: dict[str, Any], transform_input: TransformInput) -> DataProcessing:
    def path(field: str) -> JsonPath | None:
        text = raw.get(field)
        if text is None:
            return None
        parsed = parse_jsonpath(text, field=f"DataProcessing.{field}")
        return None if parsed.is_identity else parsed

    join_source = raw.get("JoinSource") or "None"
    if join_source not in ("None", "Input"):
        raise ValidationError(f"DataProcessing.JoinSource {join_source!r} is not valid: use None or Input.")
    processing = DataProcessing(input_filter=path("InputFilter"), output_filter=path("OutputFilter"),
                                join_input=join_source == "Input")
    needs_records = processing.input_filter is not None or processing.join_input
    if needs_records and transform_input.split_type == "RecordIO":
        raise ValidationError("DataProcessing InputFilter and JoinSource work on CSV and JSON records only, not on "
                              "SplitType RecordIO; use SplitType Line or None, or keep only OutputFilter.")
    if needs_records and not transform_input.record_format:
        raise ValidationError("DataProcessing InputFilter and JoinSource work on CSV and JSON records only: set "
                              "TransformInput.ContentType to text/csv, application/json or application/jsonlines "
                              f"(got {transform_input.content_type or 'none'!r}).")
    return processing
