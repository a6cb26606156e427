"""Read an endpoint's captured JSON Lines files back into a table of the requests' features.

Each captured `endpointInput` holds one request: CSV text (one record per line), JSON (an object of
named features, a list of values, a list of records or `{"instances": [...]}`), or base64 of either
(read by its observedContentType). Positional values are named after the baseline's features in order,
as the prebuilt monitor container matches a header-less capture to the baseline's columns; values past
the baseline's last feature are `_c<N>`. Records outside the analysis window are left out.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from sagelab.algorithms.base import DataError


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _scalar(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    return value


def _json_records(value: Any) -> Iterator[dict[str, Any] | list[Any]]:
    if isinstance(value, dict):
        if "instances" in value:
            yield from _json_records(value["instances"])
        elif "features" in value and isinstance(value["features"], list):
            yield list(value["features"])
        else:
            yield value
    elif isinstance(value, list):
        if value and all(isinstance(v, (dict, list)) for v in value):
            for item in value:
                yield from _json_records(item)
        else:
            yield list(value)
    else:
        yield [value]


def _records(entry: dict[str, Any]) -> Iterator[dict[str, Any] | list[Any]]:
    encoding = entry.get("encoding", "BASE64")
    data = entry.get("data", "")
    content_type = (entry.get("observedContentType") or "").lower()
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8", "replace")
        encoding = "JSON" if "json" in content_type else "CSV" if "csv" in content_type else ""
    if encoding == "CSV":
        for row in csv.reader(io.StringIO(data)):
            if row:
                yield [_scalar(v) for v in row]
    elif encoding == "JSON":
        for line in data.splitlines() if "jsonlines" in content_type else [data]:
            if line.strip():
                yield from _json_records(json.loads(line))


def read_captured(folder: Path, feature_names: Sequence[str], start: float | None, end: float | None) -> pa.Table:
    """The window's captured requests, one row per record."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                entry = event["captureData"].get("endpointInput")
                at = _parse_time(event["eventMetadata"]["inferenceTime"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path.name} line {number} is not a SageMaker data capture record: {exc}") from None
            if entry is None or (start is not None and at < start) or (end is not None and at >= end):
                continue
            for record in _records(entry):
                if isinstance(record, dict):
                    rows.append({k: _scalar(v) if isinstance(v, str) else v for k, v in record.items()})
                else:
                    rows.append({(feature_names[i] if i < len(feature_names) else f"_c{i}"): _scalar(v)
                                 if isinstance(v, str) else v for i, v in enumerate(record)})
    if not rows:
        raise DataError("No captured data in the analysis window: the endpoint captured no requests between "
                        "the window's start and end (is DataCaptureConfig enabled, and were there invocations?).")
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            integral = all(isinstance(v, int) for v in present)
            columns[name] = pa.array(values, pa.int64() if integral else pa.float64())
        else:
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)
