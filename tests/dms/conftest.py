"""DMS fixtures: a dms client on the shared server, and a real PostgreSQL cluster (skipped when not installed)."""

from __future__ import annotations

import pytest

from sagelab.testing.postgres import postgres_cluster  # noqa: F401 - a session fixture, re-exported for pytest


@pytest.fixture(scope="session")
def dms(server):
    return server.client("dms")
