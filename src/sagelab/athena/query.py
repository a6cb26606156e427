"""One query as the engine and the statement handlers see it, and how a query fails."""

from __future__ import annotations

import dataclasses

import duckdb

from sagelab.athena.statements import Statement


class QueryFailed(Exception):
    """The query cannot run: `reason` is its StateChangeReason, `category` Athena's error category."""

    def __init__(self, reason: str, category: int = 2):
        super().__init__(reason)
        self.reason = reason
        self.category = category


@dataclasses.dataclass
class QueryContext:
    query_id: str
    text: str
    statement: Statement
    database: str
    output_location: str
    connection: duckdb.DuckDBPyConnection | None = None
