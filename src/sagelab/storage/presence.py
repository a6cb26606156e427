"""Which servers are up on one metadata database, so that a starting server settles only what was left behind.

A server's start-up recovery (`Platform.start_serving`) treats every active job as left behind by a stopped
server and settles or takes it over. That is right when the server is the only one; on a PostgreSQL database
shared by several servers it would fail the jobs a live server is running. So each server holds a shared
advisory lock for as long as it lives, on a connection of its own (PostgreSQL drops it when the process dies,
SIGKILL included), and a starting server recovers only if it can take that lock exclusively, i.e. when no
other server is up. The exclusive hold lasts through the recovery, so two servers starting together never
both recover. SQLite is one server's file: it is always alone.

Each server also holds, on the same connection, an exclusive lock of its own, keyed by its id, which the
leases it issues name (`ResourceStore.new_lease`). A live server that finds leases of another server whose
lock it can take knows that server is gone, and takes its work over while holding that lock (`gone`): two
live servers never take over the same dead one at once, and a live one's work is never taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
import zlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sagelab.storage.db import Database

_KEY = zlib.crc32(b"sagelab.servers")


def _server_key(server_id: str) -> int:
    """A server's own lock: a signed 64-bit key from its id (PostgreSQL's advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(f"sagelab.server.{server_id}".encode()).digest()[:8], "big", signed=True)


class ServerPresence:
    def __init__(self, db: Database):
        self.db = db
        self.server_id = uuid.uuid4().hex[:16]
        self._conn: Connection | None = None

    @contextlib.contextmanager
    def arrival(self) -> Iterator[bool]:
        """Announce this server; yields whether it is the only one up (and so should recover)."""
        if not self.db.is_postgres:
            yield True
            return
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn = conn
        # Before any lease naming this server exists: from the first one on, the lock says it is alive.
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _server_key(self.server_id)})
        alone = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _KEY}).scalar())
        try:
            yield alone
        finally:
            conn.execute(sa.text("SELECT pg_advisory_lock_shared(:key)"), {"key": _KEY})
            if alone:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _KEY})

    @contextlib.contextmanager
    def gone(self, server_id: str) -> Iterator[bool]:
        """Whether the server `server_id` is gone; while the block runs, no other server can decide so too."""
        if not self.db.is_postgres or server_id == self.server_id:
            yield False
            return
        key = _server_key(server_id)
        with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            taken = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    def leave(self) -> None:
        if self._conn is not None:
            self._conn.invalidate()  # really closed, not back in the pool still holding the lock
            self._conn.close()
            self._conn = None
