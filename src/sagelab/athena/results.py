"""Query results as Athena keeps them: `<id>.csv` (every value quoted, NULL empty) and column metadata.

GetQueryResults pages through the result's text values; recent results stay in memory, older ones are
read back from the CSV and its `.csv.metadata` file in the lake.
"""

from __future__ import annotations

import collections
import io
import json
import threading
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from sagelab.catalog.types import athena_type, athena_type_of_duckdb


def _column(name: str, t) -> dict[str, Any]:
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
            "Type": t.name, "Precision": t.precision, "Scale": t.scale, "Nullable": "UNKNOWN",
            "CaseSensitive": t.case_sensitive}


def column_info(schema: pa.Schema) -> list[dict[str, Any]]:
    return [_column(f.name, athena_type(f.type)) for f in schema]


def column_info_of_duckdb(names: list[str], types: list[str]) -> list[dict[str, Any]]:
    return [_column(n, athena_type_of_duckdb(t)) for n, t in zip(names, types, strict=True)]


def _format_expr(position: int, duckdb_type: str) -> str:
    column = f"#{position + 1}"
    upper = duckdb_type.upper()
    if upper.startswith("TIMESTAMP"):
        return f"strftime({column}, '%Y-%m-%d %H:%M:%S.%g')"
    if upper == "BOOLEAN":
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END"
    return f"CAST({column} AS VARCHAR)"


def text_query(types: list[str], source: str) -> str:
    """A SELECT over `source` giving every value as the text Athena shows (timestamps with milliseconds).
    Columns are addressed by position, so duplicate names in the user's query do no harm."""
    exprs = ", ".join(f"{_format_expr(i, t)} AS c{i}" for i, t in enumerate(types))
    return f"SELECT {exprs} FROM {source}"


def to_csv(text: pa.Table) -> bytes:
    sink = io.BytesIO()
    if text.num_columns == 0:
        return b""
    pacsv.write_csv(text, sink, pacsv.WriteOptions(quoting_style="all_valid", include_header=True))
    return sink.getvalue()


def from_csv(data: bytes, columns: list[dict[str, Any]]) -> pa.Table:
    names = [c["Name"] for c in columns]
    if not data.strip():
        return pa.table({n: pa.array([], pa.string()) for n in names}) if names else pa.table({})
    options = pacsv.ConvertOptions(column_types={f"c{i}": pa.string() for i in range(len(names))},
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
    read = pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))], skip_rows=1)
    return pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=options).rename_columns(names)


def metadata_document(columns: list[dict[str, Any]], header: bool) -> bytes:
    return json.dumps({"ColumnInfo": columns, "HeaderRow": header}).encode()


class StoredResult:
    def __init__(self, text: pa.Table, columns: list[dict[str, Any]], header: bool):
        self.text = text
        self.columns = columns
        self.header = header
        self._rows: list[list[str | None]] | None = None

    @property
    def total_rows(self) -> int:
        if self.text.num_columns == 0:
            return 0
        return self.text.num_rows + (1 if self.header else 0)

    def rows(self, start: int, count: int) -> list[dict[str, Any]]:
        """Rows [start, start+count) of the ResultSet, the header being row 0 when there is one."""
        out: list[dict[str, Any]] = []
        if self.text.num_columns == 0:
            return out
        if self.header and start == 0 and count > 0:
            out.append({"Data": [{"VarCharValue": c["Name"]} for c in self.columns]})
            count -= 1
        offset = max(0, start - (1 if self.header else 0))
        chunk = self.text.slice(offset, max(0, count))
        columns = [chunk.column(i).to_pylist() for i in range(chunk.num_columns)]
        for r in range(chunk.num_rows):
            out.append({"Data": [{"VarCharValue": col[r]} if col[r] is not None else {} for col in columns]})
        return out


class ResultCache:
    """The most recent results, so paging through them does not re-read the CSV each time."""

    def __init__(self, max_cells: int = 20_000_000):
        self.max_cells = max_cells
        self._items: collections.OrderedDict[str, StoredResult] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, query_id: str, result: StoredResult) -> None:
        with self._lock:
            self._items[query_id] = result
            self._items.move_to_end(query_id)
            while len(self._items) > 1 and sum(
                    r.text.num_rows * max(1, r.text.num_columns) for r in self._items.values()) > self.max_cells:
                self._items.popitem(last=False)

    def get(self, query_id: str) -> StoredResult | None:
        with self._lock:
            result = self._items.get(query_id)
            if result is not None:
                self._items.move_to_end(query_id)
            return result
