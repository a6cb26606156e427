"""DMS fixtures: a dms client on the shared server (the PostgreSQL cluster is the session's, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dms(server):
    return server.client("dms")
