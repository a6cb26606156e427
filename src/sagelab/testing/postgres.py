"""A throwaway PostgreSQL cluster for tests: initdb'd in a temporary folder, on a free port, stopped at the end.

It runs Debian's PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`, or `SAGELAB_PG_BIN`) with
`wal_level=logical`, so logical decoding (DMS's CDC) works, and with fsync off, since a test cluster is
thrown away. initdb refuses to run as root, so under root the cluster runs as the `postgres` OS user (or
`nobody`) and lives in a folder that user owns. Connections are TCP on 127.0.0.1 with trust authentication
for the superuser `postgres`.

Use it from a conftest::

    from sagelab.testing.postgres import postgres_cluster  # noqa: F401  (a session fixture)
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagelab.embedded import free_port

#: What the cluster is started with: logical decoding for CDC; durability is pointless in a test.
#: (Not synchronous_commit=off: logical decoding reads only flushed WAL, so a commit would show up late.)
SERVER_OPTIONS = ("wal_level=logical", "max_replication_slots=10", "max_wal_senders=10", "fsync=off",
                  "full_page_writes=off", "listen_addresses=127.0.0.1",
                  "unix_socket_directories=", "max_connections=50")


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None where PostgreSQL is not installed."""
    configured = os.environ.get("SAGELAB_PG_BIN")
    candidates = [Path(configured)] if configured else sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                                              reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _run_as() -> str | None:
    """The OS user to run PostgreSQL as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user")


@dataclasses.dataclass
class PostgresCluster:
    bin_dir: Path
    folder: Path
    port: int
    os_user: str | None
    user: str = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for `database`."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", self.os_user, "--", *command] if self.os_user else command

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        options = " ".join(f"-c {option}" for option in SERVER_OPTIONS) + f" -p {self.port}"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.folder / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)


def start_cluster() -> PostgresCluster:
    """initdb and start a cluster in a new temporary folder (under /tmp, which the OS user can reach)."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL's initdb and pg_ctl are not installed")
    os_user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="sagelab-pg-"))
    if os_user:
        entry = pwd.getpwnam(os_user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    last: Exception | None = None
    for _ in range(3):  # the free port can be taken between the probe and the start
        cluster = PostgresCluster(bin_dir, folder, free_port(), os_user)
        try:
            return cluster.start()
        except RuntimeError as failure:
            last = failure
            cluster.stop()
            shutil.rmtree(cluster.data_dir, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    raise RuntimeError(f"could not start PostgreSQL: {last}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster with wal_level=logical, for the whole session; skipped if not installed."""
    if find_binaries() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)
