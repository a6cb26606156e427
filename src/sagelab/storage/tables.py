"""Table definitions (SQLAlchemy Core).

AWS resources are documents: each is one row of `resources` with the columns that List* filters and
sorts on, and the whole Describe document as JSON. `lease` fences writes from job processes: a process
that no longer owns a job (it was stopped, or the server restarted) cannot overwrite its state.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

settings_kv = sa.Table(
    "settings_kv", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

resources = sa.Table(
    "resources", metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("arn", sa.String(512), nullable=False, unique=True),
    sa.Column("status", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("modified_at", sa.Float, nullable=False),
    sa.Column("lease", sa.String(64), nullable=True),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("ix_resources_kind_created", "kind", "created_at"),
    sa.Index("ix_resources_kind_status", "kind", "status"),
)

tags = sa.Table(
    "tags", metadata,
    sa.Column("arn", sa.String(512), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

#: One aggregated data point per metric, dimensions and time (CloudWatch's statistic set, plus percentiles).
#: SageMaker's own metrics are one row per minute with p50/p90/p99; a PutMetricData datum is one row, at
#: its storage resolution (1 s or 60 s), its unit, and its values with their counts (`distribution`, JSON
#: [[value, count], ...]) so that any percentile can be answered exactly.
metric_points = sa.Table(
    "metric_points", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("namespace", sa.String(255), nullable=False),
    sa.Column("metric_name", sa.String(255), nullable=False),
    sa.Column("dimensions", sa.Text, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("sample_count", sa.Float, nullable=False),
    sa.Column("sum", sa.Float, nullable=False),
    sa.Column("minimum", sa.Float, nullable=False),
    sa.Column("maximum", sa.Float, nullable=False),
    sa.Column("p50", sa.Float, nullable=True),
    sa.Column("p90", sa.Float, nullable=True),
    sa.Column("p99", sa.Float, nullable=True),
    sa.Column("storage_resolution", sa.Integer, nullable=False, server_default="60"),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("distribution", sa.Text, nullable=True),
    sa.Index("ix_metric_points_name_time", "namespace", "metric_name", "timestamp"),
)

#: CloudWatch alarm history: state transitions, configuration updates, actions (DescribeAlarmHistory).
alarm_history = sa.Table(
    "alarm_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alarm_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("item_type", sa.String(32), nullable=False),
    sa.Column("summary", sa.String(255), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_alarm_history_name_time", "alarm_name", "timestamp"),
)

# --- the Glue Data Catalog -------------------------------------------------------------------------
# Own tables rather than `resources` rows: a table holds many partitions keyed by their values, listed
# per table and deleted with it, and none of these entities has a status, lease or ARN life cycle.
glue_databases = sa.Table(
    "glue_databases", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

glue_tables = sa.Table(
    "glue_tables", metadata,
    sa.Column("database", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

#: `values_key` is the JSON list of the partition's values: the partition's identity within its table.
glue_partitions = sa.Table(
    "glue_partitions", metadata,
    sa.Column("database", sa.String(255), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("values_key", sa.Text, primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

# --- CloudTrail's event history ----------------------------------------------------------------------
# One row per recorded call, in the order its write was committed (`id`): LookupEvents reads newest first,
# trails deliver from a cursor on `id`. The columns are what LookupAttributes filter on; `record` is the
# event as CloudTrail writes it. Data events are kept only while a trail asks for them, and are never
# shown by LookupEvents (as in AWS's Event history).
cloudtrail_events = sa.Table(
    "cloudtrail_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_time", sa.Float, nullable=False),
    sa.Column("event_name", sa.String(128), nullable=False),
    sa.Column("event_source", sa.String(128), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("management", sa.Boolean, nullable=False),
    sa.Column("username", sa.String(256), nullable=False, default=""),
    sa.Column("access_key_id", sa.String(128), nullable=False, default=""),
    sa.Column("record", sa.Text, nullable=False),
    sa.Index("ix_cloudtrail_events_time", "event_time"),
)

cloudtrail_event_resources = sa.Table(
    "cloudtrail_event_resources", metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("resource_name", sa.String(1024), primary_key=True),
    sa.Column("resource_type", sa.String(128), nullable=False),
    sa.Index("ix_cloudtrail_event_resources_name", "resource_name"),
)
