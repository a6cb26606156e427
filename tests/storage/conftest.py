"""Storage fixtures: a fresh database per test, on SQLite and on the session's PostgreSQL cluster
(tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from sagelab.testing.postgres import PostgresCluster


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty metadata database on each backend; PostgreSQL's as users write it (no driver)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sagelab.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database(f"store_{uuid.uuid4().hex[:12]}")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
