"""Storage fixtures: a real PostgreSQL cluster (skipped when not installed) and a fresh database per test."""

from __future__ import annotations

import uuid

import pytest

from sagelab.testing.postgres import PostgresCluster, postgres_cluster  # noqa: F401 - a session fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty metadata database on each backend; PostgreSQL's as users write it (no driver)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sagelab.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database(f"store_{uuid.uuid4().hex[:12]}")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
