"""Numbered schema migrations. Each runs once, inside the write transaction that records it."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sagelab.storage import tables

schema_version_table = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
)


def _0001_initial(conn: Connection) -> None:
    tables.metadata.create_all(conn, tables=[tables.settings_kv, tables.resources, tables.tags])


def _0002_metric_points(conn: Connection) -> None:
    tables.metric_points.create(conn, checkfirst=True)


def _0003_glue_catalog(conn: Connection) -> None:
    tables.metadata.create_all(conn, tables=[tables.glue_databases, tables.glue_tables, tables.glue_partitions])


def _0004_cloudtrail_events(conn: Connection) -> None:
    tables.metadata.create_all(conn, tables=[tables.cloudtrail_events, tables.cloudtrail_event_resources])


def _0005_cloudwatch(conn: Connection) -> None:
    """PutMetricData's columns on metric_points (a database made at step 2 lacks them), and alarm history."""
    have = {column["name"] for column in sa.inspect(conn).get_columns("metric_points")}
    for name, ddl in (("storage_resolution", "INTEGER NOT NULL DEFAULT 60"), ("unit", "VARCHAR(32)"),
                      ("distribution", "TEXT")):
        if name not in have:
            conn.execute(sa.text(f"ALTER TABLE metric_points ADD COLUMN {name} {ddl}"))
    tables.alarm_history.create(conn, checkfirst=True)


MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _0001_initial),
    (2, _0002_metric_points),
    (3, _0003_glue_catalog),
    (4, _0004_cloudtrail_events),
    (5, _0005_cloudwatch),
)
