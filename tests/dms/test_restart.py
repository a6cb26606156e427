"""A CDC task survives a killed server: the next server resumes it from the slot, losing no change."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import unique
from dms_helpers import FAST, describe_task, instance, wait_until

from sagelab.embedded import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def change_rows(s3, bucket: str) -> list[list]:
    """Every change written so far, from the Parquet CDC files in name (time) order."""
    objects = s3.list_objects_v2(Bucket=bucket, Prefix="cdc/public/ledger/").get("Contents", [])
    rows = []
    for key in sorted(o["Key"] for o in objects if "LOAD" not in o["Key"]):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        rows += [list(row.values()) for row in table.to_pylist()]
    return rows


def test_kill_during_cdc_then_restart_resumes_from_the_slot(tmp_path, postgres_cluster):
    url = postgres_cluster.create_database(unique("ledger").replace("-", "_"))
    source_db = sa.create_engine(url)
    with source_db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE ledger (id integer PRIMARY KEY, amount integer)"))
        conn.execute(sa.text("INSERT INTO ledger VALUES (1, 10)"))
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        dms, s3 = first.client("dms"), first.client("s3")
        s3.create_bucket(Bucket="ledger")
        rep = instance(dms)
        source = dms.create_endpoint(EndpointIdentifier="pg", EndpointType="source", EngineName="postgres",
                                     ServerName="127.0.0.1", Port=postgres_cluster.port,
                                     DatabaseName=sa.make_url(url).database, Username="postgres")["Endpoint"]
        target = dms.create_endpoint(EndpointIdentifier="lake", EndpointType="target", EngineName="s3",
                                     S3Settings={"BucketName": "ledger", "BucketFolder": "cdc",
                                                 "DataFormat": "parquet"})["Endpoint"]
        arn = dms.create_replication_task(
            ReplicationTaskIdentifier="ledger", SourceEndpointArn=source["EndpointArn"],
            TargetEndpointArn=target["EndpointArn"], ReplicationInstanceArn=rep["ReplicationInstanceArn"],
            MigrationType="full-load-and-cdc", TableMappings=json.dumps({"rules": [
                {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
                 "object-locator": {"schema-name": "public", "table-name": "ledger"}}]}),
        )["ReplicationTask"]["ReplicationTaskArn"]
        dms.get_waiter("replication_task_ready").wait(
            Filters=[{"Name": "replication-task-arn", "Values": [arn]}], WaiterConfig=FAST)
        dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
        wait_until(lambda: describe_task(dms, arn).get("ReplicationTaskStats", {}).get("TablesLoaded") == 1)
        with source_db.begin() as conn:
            conn.execute(sa.text("INSERT INTO ledger VALUES (2, 20)"))
        wait_until(lambda: len(change_rows(s3, "ledger")) == 1, what="the first change")
    finally:
        first.kill()

    with source_db.begin() as conn:  # while no server runs: the slot keeps these
        conn.execute(sa.text("INSERT INTO ledger VALUES (3, 30)"))
        conn.execute(sa.text("UPDATE ledger SET amount = 11 WHERE id = 1"))

    second = ServerProcess(home).start()
    try:
        dms, s3 = second.client("dms"), second.client("s3")
        assert describe_task(dms, arn)["Status"] == "running"
        rows = wait_until(lambda: (r := change_rows(s3, "ledger")) and len(r) >= 3 and r, what="resumed changes")
        assert rows == [["I", 2, 20], ["I", 3, 30], ["U", 1, 11]]
        stats = dms.describe_table_statistics(ReplicationTaskArn=arn)["TableStatistics"][0]
        assert (stats["FullLoadRows"], stats["Inserts"], stats["Updates"]) == (1, 2, 1)
        dms.stop_replication_task(ReplicationTaskArn=arn)
        wait_until(lambda: describe_task(dms, arn)["Status"] == "stopped")
        dms.delete_replication_task(ReplicationTaskArn=arn)
    finally:
        second.stop()
        source_db.dispose()
