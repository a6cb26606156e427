"""DeepAR's time series: JSON Lines records (`.json`, `.json.gz`, or any other name) or Parquet files, each
record {"start": "YYYY-MM-DD HH:MM:SS", "target": [...], "cat": [...], "dynamic_feat": [[...], ...]}.

Missing target values are `null` or "NaN". Files whose names start with '.' or '_' are skipped. Every error
names the channel, the file, the line (record) and the field, with what was expected and what came.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError
from sagelab.algorithms.data import data_files

JSON_TYPES = ("application/jsonlines", "application/json", "application/x-jsonlines")
PARQUET = "application/x-parquet"


@dataclasses.dataclass
class Series:
    start: Any  # pandas.Timestamp
    target: np.ndarray  # float64, NaN where missing
    cat: list[int]
    dynamic_feat: np.ndarray | None  # (features, length)
    where: str


def parse_start(value: Any, where: str) -> Any:
    import pandas as pd

    if not isinstance(value, str) or not value.strip():
        raise DataError(f'{where}: "start" must be a timestamp string "YYYY-MM-DD HH:MM:SS", got {json.dumps(value)}.')
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or stamp is pd.NaT or stamp.tzinfo is not None:
        raise DataError(f'{where}: "start" must be a timestamp "YYYY-MM-DD HH:MM:SS" without a time zone, got '
                        f"{json.dumps(value)}.")
    return stamp


def _numbers(values: Any, where: str, field: str, allow_missing: bool) -> np.ndarray:
    if not isinstance(values, list):
        raise DataError(f'{where}: "{field}" must be a list of numbers, got {json.dumps(values)[:80]}.')
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if allow_missing and (value is None or (isinstance(value, str) and value.strip().lower() == "nan")):
            out[i] = math.nan
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            missing = " (missing values are null or \"NaN\")" if allow_missing else ""
            raise DataError(f'{where}: "{field}"[{i}] must be a finite number{missing}, got {json.dumps(value)}.')
        else:
            out[i] = float(value)
    return out


def parse_series(entry: Any, where: str, *, future: int = 0) -> Series:
    """One record. `future` is how many points beyond the target dynamic_feat must cover (inference:
    prediction_length)."""
    if not isinstance(entry, dict):
        raise DataError(f'{where}: expected a JSON object with "start" and "target", got {json.dumps(entry)[:80]}.')
    for field in ("start", "target"):
        if field not in entry:
            raise DataError(f'{where}: the record has no "{field}" field.')
    start = parse_start(entry["start"], where)
    target = _numbers(entry["target"], where, "target", allow_missing=True)
    if len(target) == 0:
        raise DataError(f'{where}: "target" is empty; a series needs at least one value.')
    cat = entry.get("cat", [])
    if isinstance(cat, int) and not isinstance(cat, bool):
        cat = [cat]
    if not isinstance(cat, list) or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cat):
        raise DataError(f'{where}: "cat" must be a list of category indices (integers >= 0), got {json.dumps(cat)}.')
    dynamic = entry.get("dynamic_feat")
    features = None
    if dynamic is not None:
        if not isinstance(dynamic, list) or not all(isinstance(row, list) for row in dynamic):
            raise DataError(f'{where}: "dynamic_feat" must be a list of lists of numbers, got '
                            f"{json.dumps(dynamic)[:80]}.")
        expected = len(target) + future
        rows = []
        for k, row in enumerate(dynamic):
            if len(row) != expected:
                extra = f" (len(target) {len(target)} + prediction_length {future})" if future else " (len(target))"
                raise DataError(f'{where}: "dynamic_feat"[{k}] has {len(row)} values; expected {expected}{extra}.')
            rows.append(_numbers(row, where, f"dynamic_feat[{k}]", allow_missing=False))
        features = np.array(rows, dtype=np.float64).reshape(len(rows), expected)
    return Series(start, target, list(cat), features, where)


def _file_name(path: Path) -> str:
    head, _, rest = path.name.partition("-")
    return rest if head.isdigit() and rest else path.name


def read_channel(name: str, files: list[Path]) -> list[Series]:
    found = data_files(files)
    if not found:
        raise DataError(f"Channel '{name}' has no data: no non-empty files were found under its S3 location.")
    series: list[Series] = []
    for path in found:
        file_name = _file_name(path)
        if file_name.endswith(".parquet"):
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
            for number, row in enumerate(rows, start=1):
                series.append(parse_series(row, f"Channel '{name}', file {file_name}, record {number}"))
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"Channel '{name}', file {file_name}: not UTF-8 JSON Lines (one series per line).") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"Channel '{name}', file {file_name}, line {number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
            series.append(parse_series(entry, where))
    if not series:
        raise DataError(f"Channel '{name}' holds no time series.")
    return series


def time_features(start: Any, length: int, multiple: int, unit: str) -> np.ndarray:
    """(features, length) calendar features in [-0.5, 0.5] for the points start, start + freq, ..."""
    import pandas as pd

    steps = np.arange(length)
    if unit == "M":
        months = (start.month - 1 + multiple * steps) % 12
        return (months / 11.0 - 0.5)[None, :]
    delta = {"min": "min", "H": "h", "D": "D", "W": "W"}[unit]
    stamps = start + pd.to_timedelta(steps * multiple, unit=delta)
    index = pd.DatetimeIndex(stamps)
    if unit == "min":
        rows = [index.minute / 59.0, index.hour / 23.0, index.day_of_week / 6.0]
    elif unit == "H":
        rows = [index.hour / 23.0, index.day_of_week / 6.0]
    elif unit == "D":
        rows = [index.day_of_week / 6.0, (index.day - 1) / 30.0, (index.day_of_year - 1) / 365.0]
    else:
        rows = [(index.isocalendar().week.to_numpy() - 1) / 52.0]
    return np.array([np.asarray(r, dtype=np.float64) for r in rows]) - 0.5


def lags_for(multiple: int, unit: str) -> list[int]:
    """Lagged targets fed to the network: the last few points and one or two seasonal periods."""
    seasonal = {"min": [60 // multiple] if multiple < 60 and 60 % multiple == 0 else [],
                "H": [24 // multiple, 168 // multiple] if 24 % multiple == 0 else [],
                "D": [7 // multiple] if multiple < 7 else [], "W": [52 // multiple] if multiple < 52 else [],
                "M": [12 // multiple] if 12 % multiple == 0 and multiple < 12 else []}[unit]
    return sorted({1, 2, 3, *[s for s in seasonal if s > 3]})
