"""The store conformance kit on both backends: SQLite (the default) and a real PostgreSQL 15."""

from __future__ import annotations

import pytest

from sagelab.storage.db import Database, normalize_url
from sagelab.testing import store_kit


@pytest.mark.parametrize("check", store_kit.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_store_kit(check, database_url):
    check(database_url)


def test_postgres_urls_get_the_psycopg_driver():
    assert normalize_url("postgresql://u@h:5432/d") == "postgresql+psycopg://u@h:5432/d"
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert Database("postgresql://u@h/d").engine.dialect.driver == "psycopg"
