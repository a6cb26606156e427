"""Which servers are up on one metadata database, so that a starting server settles only what was left behind.

A server's start-up recovery (`Platform.start_serving`) treats every active job as left behind by a stopped
server and settles or takes it over. That is right when the server is the only one; on a PostgreSQL database
shared by several servers it would fail the jobs a live server is running. So each server holds a shared
advisory lock for as long as it lives, on a connection of its own (PostgreSQL drops it when the process dies,
SIGKILL included), and a starting server recovers only if it can take that lock exclusively, i.e. when no
other server is up. The exclusive hold lasts through the recovery, so two servers starting together never
both recover. SQLite is one server's file: it is always alone.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sagelab.storage.db import Database

_KEY = zlib.crc32(b"sagelab.servers")


class ServerPresence:
    def __init__(self, db: Database):
        self.db = db
        self._conn: Connection | None = None

    @contextlib.contextmanager
    def arrival(self) -> Iterator[bool]:
        """Announce this server; yields whether it is the only one up (and so should recover)."""
        if not self.db.is_postgres:
            yield True
            return
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn = conn
        alone = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _KEY}).scalar())
        try:
            yield alone
        finally:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:key)"), {"key": _KEY})
            if alone:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _KEY})

    def leave(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()  # really closed, not back in the pool still holding the lock
            self._conn.close()
            self._conn = None
