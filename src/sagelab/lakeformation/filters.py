"""Data cells filters: the rows (a FilterExpression) and columns of one table a grant lets a principal read.

A filter's expression later becomes the WHERE of a view Athena queries through, so it is checked when the
filter is made: it must stay one expression (no comment, no statement separator, no parenthesis closed
that it did not open) and it must bind against the table's columns, which DuckDB checks on an empty
relation of the same columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import duckdb

from sagelab.errors import InvalidInput

ALL_ROWS = "TRUE"


@dataclasses.dataclass(frozen=True)
class DataCellsFilter:
    database: str
    table: str
    name: str
    #: The SQL condition on rows; None: AllRowsWildcard.
    row_filter: str | None
    #: The named columns, or (with `column_wildcard`) the excluded ones.
    columns: tuple[str, ...]
    column_wildcard: bool

    @property
    def key(self) -> str:
        return f"{self.database}/{self.table}/{self.name}"

    def selected_columns(self, all_columns: list[str]) -> list[str]:
        chosen = set(self.columns)
        return [c for c in all_columns if (c not in chosen) == self.column_wildcard]

    def wire(self, catalog_id: str, version: str) -> dict[str, Any]:
        rows = {"AllRowsWildcard": {}} if self.row_filter is None else {"FilterExpression": self.row_filter}
        columns = ({"ColumnWildcard": {"ExcludedColumnNames": list(self.columns)}} if self.column_wildcard
                   else {"ColumnNames": list(self.columns)})
        return {"TableCatalogId": catalog_id, "DatabaseName": self.database, "TableName": self.table,
                "Name": self.name, "RowFilter": rows, **columns, "VersionId": version}


def read_filter(spec: Mapping[str, Any], table_columns: list[tuple[str, str]]) -> DataCellsFilter:
    """TableData of CreateDataCellsFilter, checked against the table's (name, DuckDB type) columns."""
    names = [n for n, _ in table_columns]
    database, table, name = (str(spec[m]).lower() for m in ("DatabaseName", "TableName", "Name"))
    rows = spec.get("RowFilter") or {}
    expression = rows.get("FilterExpression")
    if expression is None and rows.get("AllRowsWildcard") is None:
        raise InvalidInput("TableData.RowFilter must give FilterExpression or AllRowsWildcard.")
    listed, wildcard = spec.get("ColumnNames"), spec.get("ColumnWildcard")
    if listed is not None and wildcard is not None:
        raise InvalidInput("TableData must give either ColumnNames or ColumnWildcard, not both.")
    if listed is None and wildcard is None:
        raise InvalidInput("TableData must give ColumnNames or ColumnWildcard.")
    if wildcard is not None:
        columns, column_wildcard = tuple(c.lower() for c in wildcard.get("ExcludedColumnNames") or []), True
    else:
        columns, column_wildcard = tuple(c.lower() for c in listed), False
        if not columns:
            raise InvalidInput("TableData.ColumnNames must name at least one column.")
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise InvalidInput(f"TableData column(s) {', '.join(unknown)} are not columns of {database}.{table}; its "
                           f"columns are {', '.join(names)}.")
    if expression is not None:
        check_expression(expression, table_columns)
    return DataCellsFilter(database, table, name, expression, tuple(dict.fromkeys(columns)), column_wildcard)


def check_expression(expression: str, table_columns: list[tuple[str, str]]) -> None:
    field = "TableData.RowFilter.FilterExpression"
    if not expression.strip():
        raise InvalidInput(f"{field} must not be empty; use AllRowsWildcard for every row.")
    if not _one_expression(expression):
        raise InvalidInput(f"{field} {expression!r} is not a single row condition (comments, ';' and "
                           "unbalanced parentheses are refused).")
    columns = ", ".join(f"CAST(NULL AS {t}) AS {_quote(n)}" for n, t in table_columns) or "1 AS _"
    connection = duckdb.connect()
    try:
        connection.execute("SET enable_external_access = false")
        connection.execute(f"SELECT count(*) FROM (SELECT {columns} WHERE false) WHERE ({expression})")
    except duckdb.Error as exc:
        raise InvalidInput(f"{field} {expression!r} is not a valid condition on the table's columns: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        connection.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_expression(text: str) -> bool:
    depth, quote, index = 0, "", 0
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";" or text.startswith(("--", "/*"), index):
            return False
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
        index += 1
    return depth == 0 and not quote
