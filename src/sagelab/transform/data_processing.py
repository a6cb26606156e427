"""DataProcessing: InputFilter before inference, then JoinSource and OutputFilter on each output record.

Records are read as SageMaker reads them: a CSV line is the array of its fields, a JSON (Lines) record is
the JSON value. Joining appends the output to the input: for CSV, the output's fields after the input's
fields; for JSON, the input object gains a `SageMakerOutput` member (an input that is not an object is
wrapped as `{"SageMakerInput": ..., "SageMakerOutput": ...}`). Joined CSV stays CSV and joined JSON stays
JSON; without a join the output keeps the model's format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from sagelab.algorithms.base import split_content_type
from sagelab.transform.batching import BadRecord, Record
from sagelab.transform.jsonpath import JsonPath, JsonPathError
from sagelab.transform.spec import CSV_TYPES, JSON_TYPES, DataProcessing

_JSON_LINES = ("application/jsonlines", "application/x-jsonlines")


class RecordProcessor:
    def __init__(self, processing: DataProcessing, record_format: str):
        self.processing = processing
        self.record_format = record_format  # "csv" | "json" | "" (only OutputFilter is allowed then)

    @property
    def passes_output_through(self) -> bool:
        """Only an InputFilter: the model's answer is the output as it is."""
        return not self.processing.join_input and self.processing.output_filter is None

    # --- before inference ---------------------------------------------------------------------------
    def request_payload(self, record: Record) -> bytes:
        flt = self.processing.input_filter
        if flt is None:
            return record.data
        value = self._read_input(record)
        try:
            selected = flt.select(value)
        except JsonPathError as exc:
            raise BadRecord(f"InputFilter {flt.text!r}: {exc}", line=record.line) from None
        if self.record_format == "csv":
            return csv_line(selected if isinstance(selected, list) else [selected]).encode()
        return json_text(selected).encode()

    # --- after inference ----------------------------------------------------------------------------
    def output(self, records: Sequence[Record], response: bytes, response_type: str) -> bytes:
        """The output lines for `records`, given the model's `response` to their request."""
        if self.passes_output_through:
            return response
        response_format, outputs = split_response(response, response_type, len(records), records)
        lines = []
        for record, output in zip(records, outputs, strict=True):
            if self.processing.join_input:
                value, line_format = self._join(record, output, response_format)
            else:
                value, line_format = output, response_format
            if self.processing.output_filter is not None:
                value = _select(self.processing.output_filter, value, record, "OutputFilter")
            lines.append(render(value, line_format))
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def _read_input(self, record: Record) -> Any:
        text = _text(record)
        if self.record_format == "csv":
            return csv_fields(text)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BadRecord(f"the record is not valid JSON ({exc})", line=record.line) from None

    def _join(self, record: Record, output: Any, response_format: str) -> tuple[Any, str]:
        source = self._read_input(record)
        if self.record_format == "csv":
            extra = output if response_format == "csv" else [output]
            return [*source, *extra], "csv"
        value = _typed(output) if response_format == "csv" else output
        if isinstance(source, dict):
            return {**source, "SageMakerOutput": value}, "json"
        return {"SageMakerInput": source, "SageMakerOutput": value}, "json"


def split_response(response: bytes, response_type: str, count: int,
                   records: Sequence[Record]) -> tuple[str, list[Any]]:
    """('csv' | 'json', one output per record) from the model's answer to a request of `count` records."""
    main, _ = split_content_type(response_type)
    text = response.decode("utf-8", errors="replace")
    if main in CSV_TYPES:
        outputs: list[Any] = [csv_fields(line) for line in text.splitlines() if line.strip()]
        response_format = "csv"
    elif main in _JSON_LINES:
        outputs = [_json(line, records) for line in text.splitlines() if line.strip()]
        response_format = "json"
    elif main in JSON_TYPES:
        document = _json(text, records)
        response_format = "json"
        if count == 1:
            outputs = [document]
        elif isinstance(document, list):
            outputs = document
        else:
            lists = [v for v in document.values() if isinstance(v, list)] if isinstance(document, dict) else []
            outputs = lists[0] if len(lists) == 1 else []
    else:
        outputs, response_format = ([text.rstrip("\n")] if count == 1 else []), "json"
    if len(outputs) != count:
        where = f"lines {records[0].line}-{records[-1].line}" if count > 1 else f"line {records[0].line}"
        answered = response_type or "its default format"
        raise BadRecord(f"the model answered {len(outputs)} output record(s) in {answered} for {count} input "
                        f"record(s) ({where}), so they cannot be joined or filtered record by record; use Accept "
                        "text/csv or application/jsonlines, or BatchStrategy SingleRecord",
                        line=records[0].line)
    return response_format, outputs


def _select(path: JsonPath, value: Any, record: Record, field: str) -> Any:
    try:
        return path.select(value)
    except JsonPathError as exc:
        raise BadRecord(f"{field} {path.text!r}: {exc}", line=record.line) from None


def _text(record: Record) -> str:
    try:
        return record.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecord(f"the record is not UTF-8 text ({exc})", line=record.line) from None


def _json(text: str, records: Sequence[Record]) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRecord(f"the model's answer is not valid JSON ({exc})", line=records[0].line) from None


def _typed(fields: list[str]) -> Any:
    """CSV output fields as JSON values: numbers where they are numbers; a single field as itself."""
    values = [_number_or_text(field) for field in fields]
    return values[0] if len(values) == 1 else values


def _number_or_text(field: str) -> Any:
    for convert in (int, float):
        try:
            return convert(field)
        except ValueError:
            pass
    return field


def csv_fields(text: str) -> list[str]:
    return next(csv.reader([text]), [])


def csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([_csv_value(v) for v in values])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json_text(value)


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def render(value: Any, line_format: str) -> str:
    if line_format == "csv":
        return csv_line(value if isinstance(value, list) else [value])
    return json_text(value)
