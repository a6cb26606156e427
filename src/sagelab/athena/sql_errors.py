"""DuckDB's errors in Athena's words: `CATEGORY: line L:C: message`, positioned in the user's text.

DuckDB reports where an error is by quoting the line (`LINE 2: FORM t`, shortened with `...` when long)
with a caret under the spot; the quoted text is found again in the query to recover the column.
"""

from __future__ import annotations

import re

import duckdb

_LINE = re.compile(r"\n*LINE (\d+): (.*)\n( *)\^\s*$")
_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
_TABLE = re.compile(r"Table with name (\S+) does not exist")
_FUNCTION = re.compile(r"(?:Scalar|Aggregate|Table) Function with name (\S+) does not exist")
_SYNTAX = re.compile(r'syntax error at or near "([^"]*)"|syntax error at end of input')

#: Athena's error categories (AthenaError.ErrorCategory): 1 system, 2 user, 3 other.
USER, SYSTEM = 2, 1


def _locate(query: str, message: str) -> tuple[str, tuple[int, int] | None]:
    """Split DuckDB's message into (text, (line, column)) using its LINE/caret context."""
    match = _LINE.search(message)
    if not match:
        return message.strip(), None
    line_number = int(match.group(1))
    shown = match.group(2)
    caret = len(match.group(3)) - len(f"LINE {line_number}: ")
    lines = query.split("\n")
    source = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
    start = 0
    if shown.startswith("..."):
        shown, caret = shown[3:], caret - 3
        fragment = shown[:-3] if shown.endswith("...") else shown
        found = source.find(fragment)
        start = found if found >= 0 else 0
    return message[:match.start()].strip(), (line_number, start + max(caret, 0) + 1)


def _strip_kind(text: str) -> str:
    return re.sub(r"^[A-Za-z ]+ Error: ", "", text.split("\n", 1)[0]).strip()


def athena_message(query: str, error: duckdb.Error, database: str) -> tuple[str, int]:
    """(StateChangeReason, ErrorCategory) for a DuckDB failure of `query` run in `database`."""
    text, where = _locate(query, str(error))
    detail = _strip_kind(text)
    at = f"line {where[0]}:{where[1]}: " if where else ""
    if isinstance(error, duckdb.ParserException):
        match = _SYNTAX.search(detail)
        if match:
            token = match.group(1) if match.group(1) is not None else "<EOF>"
            return f"SYNTAX_ERROR: {at}mismatched input '{token}'", USER
        return f"SYNTAX_ERROR: {at}{detail}", USER
    if (match := _COLUMN.search(detail)) is not None:
        return (f"COLUMN_NOT_FOUND: {at}Column '{match.group(1)}' cannot be resolved or requester is not "
                "authorized to access requested resources"), USER
    if (match := _TABLE.search(detail)) is not None:
        name = match.group(1)
        qualified = name if name.count(".") >= 1 else f"{database}.{name}"
        if qualified.count(".") == 1:
            qualified = f"awsdatacatalog.{qualified}"
        return f"TABLE_NOT_FOUND: {at}Table '{qualified}' does not exist", USER
    if (match := _FUNCTION.search(detail)) is not None:
        return f"FUNCTION_NOT_FOUND: {at}Function '{match.group(1)}' not registered", USER
    if isinstance(error, duckdb.InterruptException):
        return "Query cancelled by user", USER
    if isinstance(error, duckdb.ConversionException):
        return f"INVALID_CAST_ARGUMENT: {at}{detail}", USER
    if isinstance(error, duckdb.OutOfRangeException):
        return f"NUMERIC_VALUE_OUT_OF_RANGE: {at}{detail}", USER
    if isinstance(error, duckdb.BinderException):
        return f"SEMANTIC_ERROR: {at}{detail}", USER
    if isinstance(error, duckdb.CatalogException):
        return f"SEMANTIC_ERROR: {at}{detail}", USER
    if isinstance(error, (duckdb.IOException, duckdb.PermissionException)):
        return f"HIVE_CANNOT_OPEN_SPLIT: {detail}", USER
    if isinstance(error, duckdb.InvalidInputException):
        return f"HIVE_BAD_DATA: {at}{detail}", USER
    if isinstance(error, duckdb.OutOfMemoryException):
        return f"EXCEEDED_LOCAL_MEMORY_LIMIT: {detail}", USER
    return f"GENERIC_INTERNAL_ERROR: {at}{detail}", SYSTEM
