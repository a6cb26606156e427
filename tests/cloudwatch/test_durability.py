"""Metrics and alarms are stored in the metadata database: they survive a restart, and a database made
before CloudWatch existed gains its columns and tables on upgrade."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from sagelab.embedded import ServerProcess
from sagelab.monitoring.metrics import MetricStore
from sagelab.storage.db import Database


def test_metrics_alarms_and_history_survive_a_restart(tmp_path):
    home = tmp_path / "home"
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    with ServerProcess(home) as first:
        cw = first.client("cloudwatch")
        cw.put_metric_data(Namespace="Test/Restart", MetricData=[
            {"MetricName": "M", "Values": [1.0, 9.0], "Timestamp": stamp, "StorageResolution": 1}])
        cw.put_metric_alarm(AlarmName="kept", Namespace="Test/Restart", MetricName="M", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
        cw.set_alarm_state(AlarmName="kept", StateValue="ALARM", StateReason="before the restart")
    with ServerProcess(home) as second:
        cw = second.client("cloudwatch")
        [point] = cw.get_metric_statistics(Namespace="Test/Restart", MetricName="M", StartTime=stamp,
                                           EndTime=stamp + dt.timedelta(seconds=1), Period=1,
                                           ExtendedStatistics=["p50"])["Datapoints"]
        assert point["ExtendedStatistics"]["p50"] == 5.0
        [alarm] = cw.describe_alarms(AlarmNames=["kept"])["MetricAlarms"]
        assert alarm["StateReason"] == "before the restart"
        summaries = [h["HistorySummary"] for h in cw.describe_alarm_history(AlarmName="kept")["AlarmHistoryItems"]]
        assert summaries == ["Alarm updated from INSUFFICIENT_DATA to ALARM", 'Alarm "kept" created']


def test_an_older_database_gains_the_cloudwatch_columns(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade()
    with db.write() as conn:  # back to the schema of step 4: metric_points as SageMaker's metrics made it
        for column in ("storage_resolution", "unit", "distribution"):
            conn.execute(sa.text(f"ALTER TABLE metric_points DROP COLUMN {column}"))
        conn.execute(sa.text("DROP TABLE alarm_history"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version = 5"))
        conn.execute(sa.text("INSERT INTO metric_points (namespace, metric_name, dimensions, timestamp, "
                             "sample_count, sum, minimum, maximum) VALUES ('AWS/SageMaker', 'Invocations', "
                             f"'{json.dumps({'EndpointName': 'e'})}', 600, 3, 3, 1, 1)"))
    db.upgrade()
    store = MetricStore(db)
    assert store.series({"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                         "Dimensions": [{"Name": "EndpointName", "Value": "e"}]}, 60, "Sum", 0, 1200) == {600.0: 3.0}
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alarm_history")).scalar() == 0
    db.close()
