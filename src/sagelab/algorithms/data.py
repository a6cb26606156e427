"""Readers for training channels: CSV (label first, no header), LibSVM and Parquet.

Every reader returns float32 features and, when the data has labels, a float32 label vector. Errors name
the file and, where it can be known, the line: they end up verbatim in a job's FailureReason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp

from sagelab.algorithms.base import DataError


def data_files(files: Sequence[Path]) -> list[Path]:
    """Files that hold data: SageMaker's containers skip names starting with '.' or '_' (e.g. _SUCCESS)."""
    return [f for f in files if not f.name.startswith((".", "_")) and f.stat().st_size > 0]


def _sniff_delimiter(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        first = f.readline()
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t| ").delimiter
    except csv.Error:
        return ","


def _locate_bad_csv_line(path: Path, delimiter: str, width: int) -> str:
    """Find the first line that is not `width` numbers, to say exactly what is wrong."""
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split(delimiter)
            if line.strip() == "":
                continue
            if len(fields) != width:
                return f"line {number} has {len(fields)} columns, expected {width}"
            for column, value in enumerate(fields, start=1):
                try:
                    float(value) if value.strip() else None
                except ValueError:
                    return f"line {number}, column {column}: {value!r} is not a number"
    return "it could not be parsed as numeric CSV"


def read_csv(files: Sequence[Path], *, label_size: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """CSV without a header; the first `label_size` (0 or 1) columns are the label."""
    files = data_files(files)
    if not files:
        raise DataError("The channel has no data: no non-empty files were found under its S3 prefix.")
    blocks = []
    width = None
    for path in files:
        delimiter = _sniff_delimiter(path)
        expected = _first_width(path, delimiter)
        # Parsing straight to float32 (the type every algorithm trains on) skips a float64 copy of the data.
        float32_columns = {f"f{i}": pa.float32() for i in range(expected)}
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(column_types=float32_columns, strings_can_be_null=True))
        except (pa.ArrowInvalid, ValueError) as exc:
            probe = _locate_bad_csv_line(path, delimiter, width or expected)
            raise DataError(f"Could not read CSV file {path.name}: {probe}.") from exc
        bad = [name for name, col in zip(table.column_names, table.columns, strict=True)
               if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type))]
        if bad:
            probe = _locate_bad_csv_line(path, delimiter, table.num_columns)
            raise DataError(f"Could not read CSV file {path.name}: {probe}.")
        if width is not None and table.num_columns != width:
            raise DataError(f"CSV file {path.name} has {table.num_columns} columns, but earlier files have {width}.")
        width = table.num_columns
        blocks.append(table)
    columns = [_column(blocks, i) for i in range(width or 0)]
    rows = len(columns[0]) if columns else 0
    if rows == 0:
        raise DataError("The channel's CSV files hold no rows.")
    if label_size == 0:
        return np.column_stack(columns), None
    if len(columns) < 2:
        raise DataError(f"CSV data needs a label column and at least one feature; found {len(columns)} column(s).")
    labels = columns[0].copy()  # arrow-backed columns are read-only
    if np.isnan(labels).any():
        row = int(np.flatnonzero(np.isnan(labels))[0]) + 1
        raise DataError(f"The label (first column) is missing in CSV row {row}.")
    return np.column_stack(columns[1:]), labels


def _column(tables: list[pa.Table], index: int) -> np.ndarray:
    """Column `index` of every table, end to end, as float32 (missing values become NaN)."""
    parts = [t.column(index).to_numpy(zero_copy_only=False).astype(np.float32, copy=False) for t in tables]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _first_width(path: Path, delimiter: str) -> int:
    """Columns on the first non-blank line (pyarrow skips blank lines too)."""
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return len(line.rstrip("\r\n").split(delimiter))
    return 0


def read_libsvm(files: Sequence[Path]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None]:
    """LibSVM `label[:weight] index:value ...`; returns (features, labels, weights or None)."""
    from sklearn.datasets import load_svmlight_file

    files = data_files(files)
    if not files:
        raise DataError("The channel has no data: no non-empty files were found under its S3 prefix.")
    labels, weights, rows = [], [], []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        cleaned = io.StringIO()
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.split("#", 1)[0].strip()
            if not stripped:
                continue
            head, _, rest = stripped.partition(" ")
            label_text, _, weight_text = head.partition(":")
            try:
                labels.append(float(label_text))
                weights.append(float(weight_text) if weight_text else 1.0)
            except ValueError:
                raise DataError(f"LibSVM file {path.name}, line {number}: label {head!r} is not a number.") from None
            cleaned.write(f"0 {rest}\n")
        rows.append(cleaned.getvalue())
    try:
        matrix, _ = load_svmlight_file(io.BytesIO("".join(rows).encode()), dtype=np.float32, zero_based=True)
    except ValueError as exc:
        raise DataError(f"Could not read LibSVM data: {exc}.") from exc
    weights_arr = np.asarray(weights, dtype=np.float32)
    has_weights = bool((weights_arr != 1.0).any())
    return matrix.tocsr(), np.asarray(labels, dtype=np.float32), weights_arr if has_weights else None


def read_parquet(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Parquet: the first column is the label, the rest are features."""
    files = data_files(files)
    if not files:
        raise DataError("The channel has no data: no non-empty files were found under its S3 prefix.")
    try:
        tables = [pq.read_table(p) for p in files]
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"Could not read Parquet data: {exc}.") from exc
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    try:
        data = np.column_stack([c.to_numpy(zero_copy_only=False).astype(np.float32) for c in table.columns])
    except (ValueError, TypeError) as exc:
        raise DataError(f"Parquet columns must all be numeric: {exc}.") from exc
    if data.shape[1] < 2:
        raise DataError("Parquet data needs a label column and at least one feature column.")
    return np.ascontiguousarray(data[:, 1:]), data[:, 0].copy()
