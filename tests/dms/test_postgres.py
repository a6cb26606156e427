"""DMS from a real PostgreSQL 15 into the lake: full load as Parquet and CSV read back through Glue and Athena,
and CDC through logical decoding. The cluster is initdb'd by the `postgres_cluster` fixture."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import unique
from dms_helpers import ALL_TABLES, FAST, describe_task, instance, wait_task, wait_until
from lake_helpers import select

from sagelab.catalog.formats import storage_descriptor

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROWS = [(1, "anvil", "19.99", "2024-01-02 03:04:05", True), (2, "rope, long", "4.50", "2024-02-03 04:05:06", False),
        (3, "o'hare", None, None, None)]


@pytest.fixture(scope="module")
def source_db(postgres_cluster):
    """A database with public.items and sales.orders (and a scratch table the mappings leave out)."""
    url = postgres_cluster.create_database(unique("shop").replace("-", "_"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(8,2), "
                             "added timestamp, active boolean)"))
        conn.execute(sa.text("INSERT INTO items VALUES (:i, :n, CAST(:p AS numeric), CAST(:a AS timestamp), :b)"),
                     [dict(zip("inpab", row, strict=True)) for row in ROWS])
        conn.execute(sa.text("CREATE SCHEMA sales"))
        conn.execute(sa.text("CREATE TABLE sales.orders (id bigint PRIMARY KEY, item integer, qty smallint)"))
        conn.execute(sa.text("INSERT INTO sales.orders VALUES (100, 1, 3), (101, 2, 1)"))
        conn.execute(sa.text("CREATE TABLE scratch (x integer)"))
    yield engine, url
    engine.dispose()


@pytest.fixture(scope="module")
def rep(dms):
    return instance(dms)


def pg_source(dms, postgres_cluster, url: str) -> dict:
    database = sa.make_url(url).database
    return dms.create_endpoint(EndpointIdentifier=unique("pg"), EndpointType="source", EngineName="postgres",
                               ServerName="127.0.0.1", Port=postgres_cluster.port, DatabaseName=database,
                               Username="postgres", Password="unused-with-trust")["Endpoint"]


def run_task(dms, rep, source, target, migration: str, mappings: str) -> str:
    arn = dms.create_replication_task(
        ReplicationTaskIdentifier=unique("task"), SourceEndpointArn=source["EndpointArn"],
        TargetEndpointArn=target["EndpointArn"], ReplicationInstanceArn=rep["ReplicationInstanceArn"],
        MigrationType=migration, TableMappings=mappings)["ReplicationTask"]["ReplicationTaskArn"]
    dms.get_waiter("replication_task_ready").wait(Filters=[{"Name": "replication-task-arn", "Values": [arn]}],
                                                  WaiterConfig=FAST)
    dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
    return arn


def test_full_load_into_parquet_and_csv_then_athena_reads_the_source_rows(
        dms, s3, glue, athena, postgres_cluster, source_db, rep, bucket):
    _, url = source_db
    source = pg_source(dms, postgres_cluster, url)
    dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"], EndpointArn=source["EndpointArn"])
    dms.get_waiter("test_connection_succeeds").wait(
        Filters=[{"Name": "endpoint-arn", "Values": [source["EndpointArn"]]}], WaiterConfig=FAST)
    mappings = json.dumps({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
         "object-locator": {"schema-name": "%", "table-name": "%"}},
        {"rule-type": "selection", "rule-id": "2", "rule-name": "2", "rule-action": "exclude",
         "object-locator": {"schema-name": "public", "table-name": "scr%"}}]})
    tasks = {}
    for data_format in ("parquet", "csv"):
        target = dms.create_endpoint(
            EndpointIdentifier=unique(data_format), EndpointType="target", EngineName="s3",
            S3Settings={"BucketName": bucket, "BucketFolder": f"dms/{data_format}", "DataFormat": data_format})
        tasks[data_format] = run_task(dms, rep, source, target["Endpoint"], "full-load", mappings)
    for arn in tasks.values():
        assert wait_task(dms, arn, "stopped")["ReplicationTaskStats"]["TablesLoaded"] == 2

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dms/")["Contents"])
    assert keys == ["dms/csv/public/items/LOAD00000001.csv", "dms/csv/sales/orders/LOAD00000001.csv",
                    "dms/parquet/public/items/LOAD00000001.parquet", "dms/parquet/sales/orders/LOAD00000001.parquet"]
    body = s3.get_object(Bucket=bucket, Key="dms/csv/public/items/LOAD00000001.csv")["Body"].read().decode()
    assert list(csv.reader(io.StringIO(body))) == [  # no header, as DMS writes a full load
        ["1", "anvil", "19.99", "2024-01-02 03:04:05.000000", "true"],
        ["2", "rope, long", "4.50", "2024-02-03 04:05:06.000000", "false"], ["3", "o'hare", "", "", ""]]
    parquet = pq.read_table(io.BytesIO(s3.get_object(
        Bucket=bucket, Key="dms/parquet/public/items/LOAD00000001.parquet")["Body"].read()))
    assert [str(f.type) for f in parquet.schema] == ["int32", "string", "decimal128(8, 2)", "timestamp[us]", "bool"]
    orders = pq.read_table(io.BytesIO(s3.get_object(
        Bucket=bucket, Key="dms/parquet/sales/orders/LOAD00000001.parquet")["Body"].read()))
    assert [str(f.type) for f in orders.schema] == ["int64", "int32", "int16"]

    database = unique("lake").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    columns = [{"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"},
               {"Name": "price", "Type": "decimal(8,2)"}, {"Name": "added", "Type": "timestamp"},
               {"Name": "active", "Type": "boolean"}]
    for data_format in ("parquet", "csv"):
        glue.create_table(DatabaseName=database, TableInput={"Name": f"items_{data_format}", "StorageDescriptor":
                          storage_descriptor(data_format, f"s3://{bucket}/dms/{data_format}/public/items/", columns,
                                             quoted=True)})  # DMS quotes a value that holds the delimiter
    output = f"s3://{bucket}/athena/"
    for data_format in ("parquet", "csv"):
        rows = select(athena, f"SELECT id, name, price, active FROM items_{data_format} ORDER BY id", database, output)
        assert rows == [["id", "name", "price", "active"], ["1", "anvil", "19.99", "true"],
                        ["2", "rope, long", "4.50", "false"], ["3", "o'hare", None, None]], data_format

    stats = dms.describe_table_statistics(ReplicationTaskArn=tasks["parquet"],
                                          Filters=[{"Name": "schema-name", "Values": ["sales"]}])["TableStatistics"]
    assert [(t["TableName"], t["FullLoadRows"], t["TableState"]) for t in stats] == [("orders", 2, "Table completed")]


def test_cdc_writes_inserts_updates_and_deletes_with_the_op_column(
        dms, s3, postgres_cluster, source_db, rep, bucket):
    engine, url = source_db
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id integer PRIMARY KEY, kind text, weight real)"))
        conn.execute(sa.text("INSERT INTO events VALUES (1, 'seed', 1.5)"))
    source = pg_source(dms, postgres_cluster, url)
    target = dms.create_endpoint(EndpointIdentifier=unique("cdc"), EndpointType="target", EngineName="s3",
                                 S3Settings={"BucketName": bucket, "BucketFolder": "cdc",
                                             "TimestampColumnName": "committed"})["Endpoint"]
    mappings = json.dumps({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
         "object-locator": {"schema-name": "public", "table-name": "events"}},
        {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-target": "column",
         "rule-action": "rename", "value": "category",
         "object-locator": {"schema-name": "public", "table-name": "events", "column-name": "kind"}}]})
    arn = run_task(dms, rep, source, target, "full-load-and-cdc", mappings)
    wait_until(lambda: describe_task(dms, arn).get("ReplicationTaskStats", {}).get("TablesLoaded") == 1,
               what="full load")
    assert describe_task(dms, arn)["Status"] == "running"

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events VALUES (2, 'click', 2.25), (3, 'it''s, quoted', NULL)"))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE events SET kind = 'seeded' WHERE id = 1"))
        conn.execute(sa.text("DELETE FROM events WHERE id = 2"))
        conn.execute(sa.text("INSERT INTO scratch VALUES (7)"))  # not selected: never written

    def changes():
        objects = s3.list_objects_v2(Bucket=bucket, Prefix="cdc/public/events/").get("Contents", [])
        rows = []
        for key in sorted(o["Key"] for o in objects if "LOAD" not in o["Key"]):
            rows += list(csv.reader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())))
        return rows if len(rows) >= 4 else None

    rows = wait_until(changes, what="CDC files")
    assert [[r[0]] + r[2:] for r in rows] == [["I", "2", "click", "2.25"], ["I", "3", "it's, quoted", ""],
                                              ["U", "1", "seeded", "1.5"], ["D", "2", "", ""]]
    assert all(len(r[1]) == len("2024-01-02 03:04:05.000000") for r in rows)  # the commit time
    load = s3.get_object(Bucket=bucket, Key="cdc/public/events/LOAD00000001.csv")["Body"].read().decode()
    assert load.split(",")[1:] == ["1", "seed", "1.5\n"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="cdc/public/scratch/")["KeyCount"] == 0

    stats = dms.describe_table_statistics(ReplicationTaskArn=arn)["TableStatistics"]
    assert [(t["TableName"], t["FullLoadRows"], t["Inserts"], t["Updates"], t["Deletes"]) for t in stats] == [
        ("events", 1, 2, 1, 1)]

    dms.stop_replication_task(ReplicationTaskArn=arn)
    assert wait_task(dms, arn, "stopped")["StopReason"] == "Stop Reason NORMAL"
    with engine.begin() as conn:  # while stopped: the slot keeps it for resume-processing
        conn.execute(sa.text("INSERT INTO events VALUES (4, 'later', 4.0)"))
    dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="resume-processing")
    wait_until(lambda: dms.describe_table_statistics(ReplicationTaskArn=arn)["TableStatistics"][0]["Inserts"] == 3,
               what="resumed CDC")
    dms.stop_replication_task(ReplicationTaskArn=arn)
    wait_task(dms, arn, "stopped")
    dms.delete_replication_task(ReplicationTaskArn=arn)
    with engine.connect() as conn:
        slots = conn.execute(sa.text("SELECT slot_name FROM pg_replication_slots")).scalars().all()
    assert not [s for s in slots if s.startswith("sagelab_dms_")]


def test_a_cdc_task_on_a_full_load_only_source_engine_is_refused(dms, rep, bucket, tmp_path):
    source = dms.create_endpoint(EndpointIdentifier=unique("lite"), EndpointType="source", EngineName="sqlite",
                                 DatabaseName=str(tmp_path / "x.db"))["Endpoint"]
    target = dms.create_endpoint(EndpointIdentifier=unique("t"), EndpointType="target", EngineName="s3",
                                 S3Settings={"BucketName": bucket})["Endpoint"]
    with pytest.raises(dms.exceptions.ClientError) as caught:
        dms.create_replication_task(
            ReplicationTaskIdentifier=unique("t"), SourceEndpointArn=source["EndpointArn"],
            TargetEndpointArn=target["EndpointArn"], ReplicationInstanceArn=rep["ReplicationInstanceArn"],
            MigrationType="full-load-and-cdc", TableMappings=ALL_TABLES)
    assert "postgres" in caught.value.response["Error"]["Message"]
