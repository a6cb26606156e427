"""What happens to a buffer of records on its way to the lake: the user's transformation function (in place
of a Lambda), conversion of JSON records to Parquet or ORC with a Glue table's schema, and compression.

A transformation function is named `python:<module>:<function>` where AWS takes a Lambda ARN. It is given
AWS's event (`invocationId`, `deliveryStreamArn`, `region`, `records` of `recordId`,
`approximateArrivalTimestamp`, base64 `data`) and returns `{"records": [{"recordId", "result", "data"}]}`,
result being `Ok`, `Dropped` or `ProcessingFailed`.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import importlib
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from sagelab.catalog.types import parse_hive_type
from sagelab.errors import ValidationError
from sagelab.firehose import snappy_frames

PYTHON_FUNCTION = "python:"


@dataclasses.dataclass(frozen=True)
class Incoming:
    record_id: str
    arrival_ms: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Failure:
    record: Incoming
    code: str
    message: str


def load_function(reference: str) -> Callable[..., Any]:
    """`python:<module>:<function>` -> the function. Checked when the delivery stream is created."""
    module_name, _, function_name = reference.removeprefix(PYTHON_FUNCTION).partition(":")
    if not reference.startswith(PYTHON_FUNCTION) or not module_name or not function_name:
        raise ValidationError(f"LambdaArn {reference!r}: sagelab runs a Python function in place of a Lambda; "
                              "name it as python:<module>:<function>.")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"LambdaArn {reference!r} names no importable function: {exc}.") from None
    if not callable(function):
        raise ValidationError(f"LambdaArn {reference!r} is not callable.")
    return function


def transform(reference: str, records: list[Incoming], *, stream_arn: str, region: str,
              ) -> tuple[list[tuple[Incoming, bytes]], list[Failure]]:
    """(records to deliver with their new data, failures for the error prefix); Dropped records vanish."""
    event = {"invocationId": str(uuid.uuid4()), "deliveryStreamArn": stream_arn, "region": region,
             "records": [{"recordId": r.record_id, "approximateArrivalTimestamp": r.arrival_ms,
                          "data": base64.b64encode(r.data).decode()} for r in records]}
    try:
        answer = load_function(reference)(event, None)
        results = {item["recordId"]: item for item in answer["records"]}
    except Exception as exc:  # noqa: BLE001 - the user's function failed: its records go to the error prefix
        return [], [Failure(r, "Lambda.FunctionError", f"{type(exc).__name__}: {exc}") for r in records]
    ok: list[tuple[Incoming, bytes]] = []
    failed: list[Failure] = []
    for record in records:
        item = results.get(record.record_id)
        if item is None:
            failed.append(Failure(record, "Lambda.MissingRecordId",
                                  f"The function returned no result for recordId {record.record_id}."))
        elif item.get("result") == "Ok":
            try:
                ok.append((record, base64.b64decode(item["data"], validate=True)))
            except (KeyError, ValueError, TypeError):
                failed.append(Failure(record, "Lambda.InvalidReturnData", "The returned data is not base64."))
        elif item.get("result") == "Dropped":
            continue
        elif item.get("result") == "ProcessingFailed":
            failed.append(Failure(record, "Lambda.ProcessingFailedStatus",
                                  "ProcessingFailed status returned by the function."))
        else:
            failed.append(Failure(record, "Lambda.InvalidResult",
                                  f"Result {item.get('result')!r} is not Ok, Dropped or ProcessingFailed."))
    return ok, failed


def error_document(failure: Failure, now_ms: int, *, lambda_arn: str | None) -> bytes:
    doc = {"attemptsMade": 1, "arrivalTimestamp": failure.record.arrival_ms, "errorCode": failure.code,
           "errorMessage": failure.message, "attemptEndingTimestamp": now_ms,
           "rawData": base64.b64encode(failure.record.data).decode()}
    if lambda_arn:
        doc["lambdaArn"] = lambda_arn
    return json.dumps(doc).encode() + b"\n"


# --- format conversion ----------------------------------------------------------------------------------
_ARROW = {"string": pa.string(), "varchar": pa.string(), "char": pa.string(), "int": pa.int32(),
          "integer": pa.int32(), "bigint": pa.int64(), "smallint": pa.int16(), "tinyint": pa.int8(),
          "double": pa.float64(), "float": pa.float32(), "boolean": pa.bool_(), "date": pa.date32(),
          "timestamp": pa.timestamp("ms")}


def arrow_schema(columns: list[dict[str, Any]]) -> pa.Schema:
    fields = []
    for column in columns:
        kind = parse_hive_type(column["Type"])
        arrow = _ARROW.get(kind.name)
        if arrow is None:
            raise ValidationError(f"Column {column['Name']} has type {column['Type']}: sagelab converts records "
                                  f"to the primitive types {', '.join(sorted(_ARROW))}.")
        fields.append(pa.field(column["Name"], arrow))
    return pa.schema(fields)


def convert(lines: list[bytes], schema: pa.Schema, output: str) -> tuple[bytes, list[tuple[int, str]]]:
    """JSON records -> one Parquet or ORC file with the table's columns (matched case-insensitively, as the
    OpenX/Hive JSON SerDes do). Returns the file and (index, reason) of the records that could not be read."""
    rows, bad = [], []
    names = {name.lower(): name for name in schema.names}
    for i, line in enumerate(lines):
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            bad.append((i, f"The record is not a JSON object: {exc}"))
            continue
        rows.append((i, {names[k.lower()]: v for k, v in value.items() if k.lower() in names}))
    try:
        table = pa.Table.from_pylist([row for _, row in rows], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        good = []
        for i, row in rows:  # find the records that do not fit, one at a time
            try:
                pa.Table.from_pylist([row], schema=schema)
                good.append(row)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                bad.append((i, f"The record does not fit the table's schema: {exc}"))
        table = pa.Table.from_pylist(good, schema=schema)
    sink = io.BytesIO()
    if output == "orc":
        import pyarrow.orc as orc

        orc.write_table(table, sink)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression="snappy")
    return sink.getvalue(), bad


def compress(data: bytes, format_name: str) -> tuple[bytes, str]:
    """(compressed bytes, file extension) for UNCOMPRESSED, GZIP or Snappy (the framing format)."""
    if format_name == "GZIP":
        return gzip.compress(data, compresslevel=6), ".gz"
    if format_name == "Snappy":
        return snappy_frames.compress(data), ".snappy"
    return data, ""
