"""Source databases, read through SQLAlchemy: what tables they hold, and their rows in batches.

PostgreSQL is reached through psycopg 3, MySQL through PyMySQL (which sagelab does not install: a MySQL
endpoint answers a clear failure until it is), and SQLite (a sagelab extension, not an AWS DMS engine) is
the file named by DatabaseName.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

#: Engine names a source endpoint may have, and how DMS displays them.
SOURCE_ENGINES = {"postgres": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite"}
_SYSTEM_SCHEMAS = {"postgres": {"pg_catalog", "information_schema"},
                   "mysql": {"mysql", "information_schema", "performance_schema", "sys"}}
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
#: Rows fetched from the source at a time during a full load.
BATCH_ROWS = 10_000


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    engine: str
    server: str | None
    port: int | None
    database: str | None
    username: str | None
    password: str | None

    def url(self) -> sa.URL:
        if self.engine == "sqlite":
            return sa.URL.create("sqlite", database=self.database)
        driver = {"postgres": "postgresql+psycopg", "mysql": "mysql+pymysql"}[self.engine]
        return sa.URL.create(driver, username=self.username, password=self.password, host=self.server,
                             port=self.port or _DEFAULT_PORTS[self.engine], database=self.database)

    def connect(self) -> sa.Engine:
        args: dict[str, Any] = {}
        if self.engine == "postgres" or self.engine == "mysql":
            args["connect_args"] = {"connect_timeout": 10}
        elif self.engine == "sqlite" and self.database:
            # Read-only: a migration never writes to its source (nor creates a missing file).
            return sa.create_engine(sa.URL.create("sqlite", database=f"file:{self.database}",
                                                  query={"mode": "ro", "uri": "true"}))
        return sa.create_engine(self.url(), pool_pre_ping=False, **args)


def check(spec: SourceSpec) -> str | None:
    """None when the source answers `SELECT 1`, else why not (what TestConnection reports)."""
    try:
        engine = spec.connect()
    except ImportError as missing:
        return f"The {SOURCE_ENGINES[spec.engine]} driver is not installed: {missing}."
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as failure:  # noqa: BLE001 - any driver error is the test's answer
        return f"Cannot connect to {SOURCE_ENGINES[spec.engine]} source: {_first_line(failure)}"
    finally:
        engine.dispose()
    return None


def _first_line(failure: Exception) -> str:
    text = str(getattr(failure, "orig", None) or failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__


def tables(engine: sa.Engine, engine_name: str) -> list[tuple[str, str]]:
    """Every (schema, table) of the source, system schemas left out; SQLite's one schema is `main`."""
    inspector = sa.inspect(engine)
    if engine_name == "sqlite":
        return [("main", name) for name in sorted(inspector.get_table_names())]
    found = []
    for schema in sorted(inspector.get_schema_names()):
        if schema in _SYSTEM_SCHEMAS.get(engine_name, ()) or schema.startswith("pg_"):
            continue
        found.extend((schema, name) for name in sorted(inspector.get_table_names(schema=schema)))
    return found


def reflect(engine: sa.Engine, engine_name: str, names: list[tuple[str, str]]) -> dict[tuple[str, str], sa.Table]:
    """The named tables' definitions, reflected a schema at a time (one round of catalog queries each)."""
    by_schema: dict[str, list[str]] = {}
    for schema, table in names:
        by_schema.setdefault(schema, []).append(table)
    inspector = sa.inspect(engine)
    reflected = {}
    for schema, tables_of_schema in by_schema.items():
        key = None if engine_name == "sqlite" else schema
        # Only the columns: constraints and indexes would cost a catalog query each and change no row.
        found = inspector.get_multi_columns(schema=key, filter_names=tables_of_schema)
        for (_, table), columns in found.items():
            reflected[(schema, table)] = sa.Table(table, sa.MetaData(), *[
                sa.Column(c["name"], c["type"]) for c in columns], schema=key)
    return {name: reflected[name] for name in names if name in reflected}


def rows(engine: sa.Engine, columns: list[sa.Column[Any]]) -> Iterator[list[tuple[Any, ...]]]:
    """A table's rows (these columns), in batches, read in one transaction (one snapshot on Postgres)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(sa.select(*columns))
        while batch := result.fetchmany(BATCH_ROWS):
            yield [tuple(row) for row in batch]
