"""One query as the engine and the statement handlers see it, and how a query fails."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import duckdb

from sagelab.athena.statements import Statement


class QueryFailed(Exception):
    """The query cannot run: `reason` is its StateChangeReason, `category` Athena's error category."""

    def __init__(self, reason: str, category: int = 2):
        super().__init__(reason)
        self.reason = reason
        self.category = category


class TableLimit(Protocol):
    """What the caller may read of one table (Lake Formation's decision): read by the engine, made elsewhere."""

    #: Whether the caller may know of the table at all (SHOW TABLES, DESCRIBE).
    @property
    def visible(self) -> bool: ...

    #: The columns DESCRIBE shows; None: all.
    @property
    def described(self) -> frozenset[str] | None: ...

    @property
    def readable(self) -> bool: ...

    #: The columns it may read, in the table's order; None: all.
    @property
    def columns(self) -> tuple[str, ...] | None: ...

    #: A condition on the rows it may read; None: every row.
    @property
    def row_filter(self) -> str | None: ...


#: A catalog table's document -> what the query's caller may read of it; None on the context: everything.
TableGate = Callable[[dict[str, Any]], TableLimit]


@dataclasses.dataclass
class QueryContext:
    query_id: str
    text: str
    statement: Statement
    database: str
    output_location: str
    connection: duckdb.DuckDBPyConnection | None = None
    gate: TableGate | None = None
    #: Tables the query names that the gate refused (`db.table`), for the error that says so.
    refused: set[str] = dataclasses.field(default_factory=set)
