"""What a crawler learns from one data file: its format and its schema.

Formats are recognised by content first (Parquet's magic bytes, a JSON object on the first line) and by
file extension second. DuckDB's CSV sniffer finds the delimiter, quoting and header; DuckDB and pyarrow
report the column types, which are written down as Hive types.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sagelab.catalog.types import hive_type

_PARQUET_MAGIC = b"PAR1"
_CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".psv")
_JSON_EXTENSIONS = (".json", ".jsonl", ".ndjson")


@dataclasses.dataclass
class FileSchema:
    kind: str  # csv | json | parquet
    columns: list[tuple[str, str]]  # (name, Hive type)
    compression: str = "none"
    delimiter: str = ","
    quoted: bool = False
    header: bool = False
    records: int | None = None


def _compression(key: str) -> str:
    return "gzip" if key.endswith(".gz") else "none"


def detect_kind(key: str, path: Path) -> str | None:
    """csv, json or parquet; None for files a crawler should skip (unknown binary formats)."""
    name = key.lower().removesuffix(".gz")
    with path.open("rb") as f:
        head = f.read(4)
    if head == _PARQUET_MAGIC or name.endswith(".parquet"):
        return "parquet"
    opener = gzip.open if key.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            first = f.read(4096).lstrip()
    except OSError:
        return None
    if name.endswith(_JSON_EXTENSIONS) or first.startswith(b"{"):
        return "json"
    if name.endswith(_CSV_EXTENSIONS):
        return "csv"
    try:
        first.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "csv"


def _glue_name(name: str, index: int) -> str:
    """Glue spells missing CSV header names col0, col1, ...; names are lower case."""
    if name.startswith("column") and name[6:].isdigit():
        return f"col{index}"
    return name.strip().lower() or f"col{index}"


def sniff_file(connection, key: str, path: Path) -> FileSchema | None:
    """The schema of one file, or None when it is not a format the catalog describes."""
    kind = detect_kind(key, path)
    if kind is None:
        return None
    if kind == "parquet":
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
        return FileSchema("parquet", [(f.name.lower(), hive_type(f.type)) for f in schema],
                          records=metadata.num_rows)
    compression = _compression(key)
    source = str(path).replace("'", "''")
    if kind == "json":
        json_compression = "gzip" if compression == "gzip" else "uncompressed"
        arrow = connection.sql(f"SELECT * FROM read_json('{source}', format='newline_delimited', "
                               f"compression='{json_compression}') LIMIT 0").to_arrow_table().schema
        return FileSchema("json", [(f.name.lower(), hive_type(f.type)) for f in arrow], compression)
    sniffed = connection.sql(f"SELECT Delimiter, Quote, HasHeader FROM sniff_csv('{source}', "
                             f"compression='{compression}')").fetchone()
    delimiter, quote, has_header = sniffed
    arrow = connection.sql(f"SELECT * FROM read_csv('{source}', compression='{compression}') LIMIT 0"
                           ).to_arrow_table().schema
    quoted = _uses_quotes(path, compression, quote)
    columns = [(_glue_name(f.name, i), _csv_type(f.type)) for i, f in enumerate(arrow)]
    return FileSchema("csv", columns, compression, delimiter=delimiter, quoted=quoted, header=bool(has_header))


def _csv_type(arrow: pa.DataType) -> str:
    # Text formats carry no time zone or width: Glue's CSV classifier stays with these basic types.
    name = hive_type(arrow)
    return {"int": "bigint", "tinyint": "bigint", "smallint": "bigint", "float": "double"}.get(name, name)


def _uses_quotes(path: Path, compression: str, quote: str) -> bool:
    if not quote or quote == "(empty)":
        return False
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rb") as f:
        return quote.encode() in f.read(1 << 16)
