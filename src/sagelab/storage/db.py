"""The metadata database: a SQLAlchemy engine addressed by URL, with one write path.

SQLite is the embedded default (WAL journal, FULL sync so an acknowledged write survives a crash, one
writer at a time through `BEGIN IMMEDIATE`). PostgreSQL (`postgresql://...`, driven by psycopg 3) lets
several servers share one metadata store: writers there run concurrently under READ COMMITTED, so a store
that reads before it writes locks what it read (`SELECT ... FOR UPDATE`, which SQLite ignores: its writer
already holds the whole database). Any other SQLAlchemy URL is used as is.
Job processes open their own `Database` on the same URL, so every write goes through `write()`.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sagelab.storage.migrations import MIGRATIONS, schema_version_table

T = TypeVar("T")

#: SQLSTATEs of a transaction that lost a race with a concurrent one and may simply run again:
#: unique_violation (both inserted the same key), serialization_failure, deadlock_detected.
_RACE_SQLSTATES = frozenset({"23505", "40001", "40P01"})


#: URL schemes users write for PostgreSQL, mapped to the psycopg 3 dialect so nobody has to name the driver
#: (SQLAlchemy's own default for `postgresql://` is psycopg2, which sagelab does not ship).
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def normalize_url(url: str) -> str:
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


class Database:
    def __init__(self, url: str):
        self.url = normalize_url(url)
        self._engine: Engine | None = None
        self._write_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, pool_pre_ping=True)
        path = self.url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None hands transaction control to us: reads run in autocommit, and
        # write() opens BEGIN IMMEDIATE so two processes never deadlock upgrading a read lock.
        engine = sa.create_engine(self.url, connect_args={"isolation_level": None, "timeout": 30,
                                                          "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; committed when the block exits normally, rolled back otherwise."""
        with self._write_lock, self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            else:
                with conn.begin():
                    yield conn

    def write_retrying(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """`work(conn)` in one write transaction, run again (from a fresh read) when it lost a race with a
        concurrent writer. Only PostgreSQL's writers race; SQLite's single writer never does."""
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as failure:
                if attempt == attempts - 1 or getattr(failure.orig, "sqlstate", None) not in _RACE_SQLSTATES:
                    raise
        raise AssertionError("unreachable")

    def serialize(self, conn: Connection, name: str) -> None:
        """Make the writers of `name` take turns until their transactions end (across servers and processes).
        SQLite has one writer at a time already; PostgreSQL takes a transaction-scoped advisory lock."""
        if self.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Yields whether this caller may do the work called `name` now, while no other server does it: work
        that writes outside the database (files in the lake) and must not be done twice. On PostgreSQL a
        session advisory lock, tried without waiting; SQLite's one server needs none."""
        if not self.is_postgres:
            yield True
            return
        key = {"key": zlib.crc32(name.encode())}
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            mine = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key).scalar())
            try:
                yield mine
            finally:
                if mine:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)

    def upgrade(self) -> int:
        """Apply every numbered migration not yet applied; returns the schema version."""
        with self.write() as conn:
            # Servers starting together on one PostgreSQL database would otherwise both create the tables.
            self.serialize(conn, "sagelab.schema")
            schema_version_table.create(conn, checkfirst=True)
            applied = {row[0] for row in conn.execute(sa.select(schema_version_table.c.version))}
            for number, migrate in MIGRATIONS:
                if number not in applied:
                    migrate(conn)
                    conn.execute(schema_version_table.insert().values(version=number))
                    applied.add(number)
            return max(applied, default=0)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
