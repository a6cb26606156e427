"""Runs one Athena statement with DuckDB over the catalog.

Each query gets its own in-memory DuckDB connection. The catalog's databases become schemas of an
attached database named `awsdatacatalog` (so `db.table` and `awsdatacatalog.db.table` both resolve),
and the tables the query names become views over their files in the lake. Before the user's SQL runs,
file access is limited to the lake and the configuration is locked: SQL can read catalog data and
nothing else on the machine.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sagelab.athena import catalog_statements, results
from sagelab.athena.query import QueryContext, QueryFailed
from sagelab.athena.relations import quote_identifier, restricted_sql, view_sql
from sagelab.athena.sql_errors import athena_message
from sagelab.athena.statements import query_text, referenced_names
from sagelab.athena.writes import write_ctas, write_insert
from sagelab.catalog.store import CatalogStore
from sagelab.errors import SagelabError
from sagelab.lake.blobs import BlobStore

CATALOG = "awsdatacatalog"
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


@dataclasses.dataclass
class Outcome:
    #: The rows as Athena's text values, and the ColumnInfo of the typed result.
    text: pa.Table | None = None
    columns: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    header: bool = True
    update_count: int | None = None
    bytes_scanned: int = 0
    planning_ms: int = 0
    engine_ms: int = 0
    manifest: list[str] = dataclasses.field(default_factory=list)


class QueryEngine:
    def __init__(self, *, blobs: BlobStore, catalog: CatalogStore):
        self.blobs = blobs
        self.catalog = catalog
        self.pool = ConnectionPool(self._prepare)

    def _prepare(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB instance ready for one query: lake access only, the catalog attached, profiling on."""
        staging = self.blobs.staging_dir().resolve()
        spill = staging / "athena" / "spill" / uuid.uuid4().hex
        connection = duckdb.connect(config={"temp_directory": str(spill)})
        try:
            # Unknown table names must never resolve to Python objects of this process.
            connection.execute("SET python_enable_replacements = false")
            # Footers are read when a view is made and again when the query binds it: cache them.
            connection.execute("SET parquet_metadata_cache = true")
            allowed = [str(staging) + "/"]
            root = getattr(self.blobs, "root", None)
            if root is not None:
                allowed.append(str(Path(root).resolve()) + "/")
            connection.execute("SET allowed_directories = " + json.dumps(allowed).replace('"', "'"))
            connection.execute(f"ATTACH ':memory:' AS {CATALOG}")
            connection.execute(f"USE {CATALOG}")
            connection.execute("PRAGMA enable_profiling = 'no_output'")
            connection.execute("""SET custom_profiling_settings = '{"TOTAL_BYTES_READ": "true"}'""")
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        self.pool.close()

    def scratch_dir(self, query_id: str) -> Path:
        return self.blobs.staging_dir() / "athena" / query_id

    def run(self, ctx: QueryContext, on_connection: Callable[[duckdb.DuckDBPyConnection | None], None]) -> Outcome:
        kind = ctx.statement.kind
        if kind not in ("query", "ctas", "insert"):
            text = catalog_statements.run(self.blobs, self.catalog, ctx)
            return Outcome(text=text, columns=results.column_info(text.schema), header=False)
        started = time.perf_counter()
        sql = query_text(ctx.text, ctx.statement)
        scratch = self.scratch_dir(ctx.query_id)
        connection = self._connect(ctx, sql, scratch)
        on_connection(connection)
        try:
            planned = time.perf_counter()
            outcome = Outcome(planning_ms=int((planned - started) * 1000))
            try:
                relation = connection.sql(sql)
                if relation is None:
                    raise QueryFailed("NOT_SUPPORTED: the statement returns no rows and changes nothing.")
                if kind == "query":
                    types = [str(t) for t in relation.types]
                    relation.create_view("athena_query_result")
                    outcome.columns = results.column_info_of_duckdb(relation.columns, types)
                    text = connection.sql(results.text_query(types, "athena_query_result")).to_arrow_table()
                    outcome.text = text.rename_columns([c["Name"] for c in outcome.columns])
                elif kind == "ctas":
                    outcome.update_count, outcome.manifest = write_ctas(
                        self.blobs, self.catalog, ctx, connection, relation, scratch)
                    outcome.header = False
                else:
                    outcome.header = False
                    outcome.update_count, outcome.manifest = write_insert(
                        self.blobs, self.catalog, ctx, connection, relation, scratch)
            except duckdb.Error as exc:
                refused = _refused_table(exc, ctx)
                if refused:
                    raise QueryFailed("Insufficient permissions to execute the query. Insufficient Lake "
                                      f"Formation permission(s) on {refused}") from exc
                reason, category = athena_message(sql, _with_position(connection, sql, exc), ctx.database)
                raise QueryFailed(reason, category) from exc
            outcome.engine_ms = int((time.perf_counter() - planned) * 1000)
            outcome.bytes_scanned = _bytes_read(connection)
            return outcome
        finally:
            on_connection(None)
            # Shutting an instance down joins its threads (tens of milliseconds): not on the query's path.
            threading.Thread(target=_dispose, args=(connection, scratch), name="athena-duckdb-close",
                             daemon=True).start()

    # --- the connection -------------------------------------------------------------------------------
    def _connect(self, ctx: QueryContext, sql: str, scratch: Path) -> duckdb.DuckDBPyConnection:
        scratch.mkdir(parents=True, exist_ok=True)
        connection = self.pool.take()
        try:
            self._register_views(connection, ctx, sql, scratch)
            connection.execute(f"USE {CATALOG}.{quote_identifier(ctx.database)}")
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
        except BaseException:
            connection.close()
            raise
        return connection

    def _register_views(self, connection: duckdb.DuckDBPyConnection, ctx: QueryContext, sql: str,
                        scratch: Path) -> None:
        names = referenced_names(sql)
        databases = {ctx.database} | {d["Name"] for d in self.catalog.list_databases() if d["Name"] in names}
        for database in sorted(databases):
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{quote_identifier(database)}")
            for table_name in self.catalog.table_names(database):
                if table_name not in names:
                    continue
                table = self.catalog.find_table(database, table_name)
                if table is None:
                    continue
                limit = ctx.gate(table) if ctx.gate is not None else None
                if limit is not None and not limit.readable:
                    ctx.refused.add(f"{database}.{table_name}")  # no view: naming it fails, and says why
                    continue
                partitions = (self.catalog.list_partitions(database, table_name, table=table)
                              if table.get("PartitionKeys") else [])
                view = f"{CATALOG}.{quote_identifier(database)}.{quote_identifier(table_name)}"
                for check_columns in (False, True):
                    try:
                        select, _ = view_sql(self.blobs, table, partitions, check_columns=check_columns,
                                             scratch=scratch)
                        if limit is not None and (limit.columns is not None or limit.row_filter):
                            select = restricted_sql(select, limit.columns, limit.row_filter)
                    except SagelabError as exc:
                        raise QueryFailed(f"HIVE_METASTORE_ERROR: table {database}.{table_name}: "
                                          f"{exc.message}") from exc
                    try:
                        connection.execute(f"CREATE VIEW {view} AS {select}")
                        break
                    except duckdb.BinderException:
                        if not check_columns:
                            continue  # a catalog column no file has: read the footers and try again
                        raise
                    except duckdb.Error as exc:
                        raise QueryFailed(f"HIVE_BAD_DATA: table {database}.{table_name} cannot be read: "
                                          f"{str(exc).splitlines()[0]}") from exc


class ConnectionPool:
    """DuckDB instances prepared ahead of time on a background thread.

    Starting a DuckDB instance costs tens of milliseconds, a large part of a small query's latency, and an
    instance serves one query only (its configuration is locked for the user's SQL), so spares are made
    while the server waits for the next query.
    """

    def __init__(self, prepare: Callable[[], duckdb.DuckDBPyConnection], spares: int = 2):
        self.prepare = prepare
        self.spares = spares
        self._ready: list[duckdb.DuckDBPyConnection] = []
        self._pending = 0
        self._closed = False
        self._lock = threading.Lock()

    def take(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            connection = self._ready.pop() if self._ready else None
        self._refill()
        return connection if connection is not None else self.prepare()

    def _refill(self) -> None:
        with self._lock:
            missing = self.spares - len(self._ready) - self._pending
            if self._closed or missing <= 0:
                return
            self._pending += missing
        for _ in range(missing):
            threading.Thread(target=self._make_one, name="athena-duckdb-spare", daemon=True).start()

    def _make_one(self) -> None:
        try:
            connection = self.prepare()
        except Exception:  # noqa: BLE001 - a failed spare is made again by the query that needs it
            connection = None
        with self._lock:
            self._pending -= 1
            if connection is not None and not self._closed:
                self._ready.append(connection)
                connection = None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
        for connection in ready:
            connection.close()


def _with_position(connection: duckdb.DuckDBPyConnection, sql: str, error: duckdb.Error) -> duckdb.Error:
    """The same error with DuckDB's LINE/caret context, which its relation API leaves out.

    Parser, binder and catalog errors happen before anything runs, so preparing the statement again
    through `execute` costs nothing and reports where in the text the problem is."""
    if "\nLINE " in str(error) or not isinstance(
            error, (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)):
        return error
    try:
        connection.execute(sql)
    except duckdb.Error as again:
        return again if type(again) is type(error) else error
    return error


def _refused_table(error: duckdb.Error, ctx: QueryContext) -> str | None:
    """The refused table a failure to find a table is about, if it is one."""
    match = _MISSING_TABLE.search(str(error)) if isinstance(error, duckdb.CatalogException) else None
    if match is None or not ctx.refused:
        return None
    parts = match.group(1).strip('"').lower().split(".")
    name = ".".join(parts[-2:]) if len(parts) > 1 else f"{ctx.database}.{parts[0]}"
    return name if name in ctx.refused else None


def _dispose(connection: duckdb.DuckDBPyConnection, scratch: Path) -> None:
    connection.close()
    shutil.rmtree(scratch, ignore_errors=True)


def _bytes_read(connection: duckdb.DuckDBPyConnection) -> int:
    try:
        info = json.loads(connection.get_profiling_information())
        return int(info.get("total_bytes_read") or 0)
    except (duckdb.Error, ValueError, TypeError):
        return 0

