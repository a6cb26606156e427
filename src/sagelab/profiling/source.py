"""Bring a data set into memory as one Arrow table: from a DataFrame, a table, or CSV/Parquet/JSON files.

DuckDB reads files (it sniffs CSV dialects and types, and reads many files at once). Float NaN is turned
into null on the way in, so every later pass has one notion of "missing", as pandas has.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sagelab.errors import ValidationError

FORMATS = ("csv", "parquet", "json")


def data_files(path: Path) -> list[Path]:
    """A file, or the data files under a folder (skipping hidden and marker files such as _SUCCESS)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValidationError(f"Data path {str(path)!r} does not exist.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(path).parts) and p.stat().st_size > 0)
    if not files:
        raise ValidationError(f"No data files under {str(path)!r}.")
    return files


def guess_format(path: Path) -> str:
    """From the name, else from the first bytes: Parquet's magic, a JSON object, or CSV."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".parquet", "parquet"), (".pq", "parquet"), (".json", "json"), (".jsonl", "json"),
                        (".csv", "csv"), (".tsv", "csv"), (".txt", "csv")):
        if name.endswith(suffix):
            return fmt
    with path.open("rb") as f:
        head = f.read(64)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip().startswith((b"{", b"[")):
        return "json"
    return "csv"


def read_files(files: Sequence[Path], *, file_format: str | None = None, header: bool = True) -> pa.Table:
    import duckdb

    if not files:
        raise ValidationError("No data files to read.")
    fmt = file_format or guess_format(files[0])
    if fmt not in FORMATS:
        raise ValidationError(f"Data format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    paths = [str(f) for f in files]
    con = duckdb.connect()
    try:
        if fmt == "parquet":
            relation = con.read_parquet(paths, union_by_name=True)
        elif fmt == "json":
            relation = con.read_json(paths)
        else:
            relation = con.read_csv(paths, header=header, union_by_name=True)
        table = relation.to_arrow_table()
    except duckdb.Error as exc:
        raise ValidationError(f"Could not read {fmt} data from {paths[0]}"
                              f"{f' (and {len(paths) - 1} more)' if len(paths) > 1 else ''}: {exc}") from None
    finally:
        con.close()
    if fmt == "csv" and not header:
        # Model Monitor names header-less CSV columns _c0, _c1, ...
        table = table.rename_columns([f"_c{i}" for i in range(table.num_columns)])
    return table


def to_arrow(data: Any, *, file_format: str | None = None, header: bool = True) -> pa.Table:
    """Any supported input as an Arrow table whose float columns use null, never NaN, for missing."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, (str, Path)):
        table = read_files(data_files(Path(data)), file_format=file_format, header=header)
    elif isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, Path)) for p in data):
        files = [f for p in data for f in data_files(Path(p))]
        table = read_files(files, file_format=file_format, header=header)
    elif hasattr(data, "__dataframe__") or type(data).__name__ == "DataFrame":
        table = pa.Table.from_pandas(data, preserve_index=False)
    else:
        raise ValidationError(f"Cannot profile a {type(data).__name__}: pass a pandas DataFrame, an Arrow "
                              "table, or a path to CSV, Parquet or JSON data.")
    return _nan_to_null(table.combine_chunks())


def _nan_to_null(table: pa.Table) -> pa.Table:
    columns = []
    for column in table.columns:
        if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
