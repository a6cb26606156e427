"""The metadata database: a SQLAlchemy engine addressed by URL, with one write path.

SQLite is the embedded default (WAL journal, FULL sync so an acknowledged write survives a crash, one
writer at a time through `BEGIN IMMEDIATE`). Any other SQLAlchemy URL (`postgresql://...`) is used as is.
Job processes open their own `Database` on the same URL, so every write goes through `write()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sagelab.storage.migrations import MIGRATIONS, schema_version_table


class Database:
    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._write_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

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

    def upgrade(self) -> int:
        """Apply every numbered migration not yet applied; returns the schema version."""
        with self.write() as conn:
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
