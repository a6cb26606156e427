"""DMS through a real boto3 client: shapes, statuses, errors and pages, with a SQLite source (fast)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import botocore.exceptions
import pytest
from conftest import unique
from dms_helpers import ALL_TABLES, FAST, instance, wait_task

pytestmark = pytest.mark.timeout(120)


def error_of(call) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)", [(1, "ann", "paris"), (2, "bob", "rome, it"),
                                                                   (3, "cy", None)])
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total REAL)")
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(10, 1, 9.5), (11, 2, 20.0)])
        db.execute("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note TEXT)")
        db.execute("INSERT INTO audit_log VALUES (1, 'secret')")
    return path


def sqlite_source(dms, path, **extra) -> dict:
    return dms.create_endpoint(EndpointIdentifier=unique("src"), EndpointType="source", EngineName="sqlite",
                               DatabaseName=str(path), Username="reader", Password="hunter2", **extra)["Endpoint"]


def s3_target(dms, bucket, **settings) -> dict:
    return dms.create_endpoint(EndpointIdentifier=unique("dst"), EndpointType="target", EngineName="s3",
                               S3Settings={"BucketName": bucket, "BucketFolder": "raw", **settings})["Endpoint"]


def test_endpoints_are_answered_like_dms_and_never_echo_the_password(dms, shop, bucket, server, cloudtrail):
    source = sqlite_source(dms, shop)
    assert source["EndpointType"] == "SOURCE" and source["EngineName"] == "sqlite"
    assert source["Status"] == "active" and source["DatabaseName"] == str(shop)
    assert source["EndpointArn"].startswith(f"arn:aws:dms:{server.region}:")
    assert ":endpoint:" in source["EndpointArn"] and "Password" not in source
    target = s3_target(dms, bucket, DataFormat="parquet")
    assert target["EngineDisplayName"] == "Amazon S3"
    assert target["S3Settings"]["BucketName"] == bucket and target["S3Settings"]["DataFormat"] == "parquet"

    found = dms.describe_endpoints(Filters=[{"Name": "endpoint-arn", "Values": [source["EndpointArn"]]}])
    assert [e["EndpointIdentifier"] for e in found["Endpoints"]] == [source["EndpointIdentifier"]]
    assert "Password" not in json.dumps(found)
    stored = b"".join(p.read_bytes() for p in server.home.glob("sagelab.db*"))
    assert b"reader" in stored and b"hunter2" not in stored  # sealed at rest under the dms service key
    events = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateEndpoint"}])["Events"]
    recorded = [r for r in (json.loads(e["CloudTrailEvent"]) for e in events)
                if r["eventSource"] == "dms.amazonaws.com"  # SageMaker's CreateEndpoint shares the name
                and r["requestParameters"]["endpointIdentifier"] == source["EndpointIdentifier"]]
    assert len(recorded) == 1 and recorded[0]["eventSource"] == "dms.amazonaws.com"
    assert recorded[0]["requestParameters"]["username"] == "reader" and "hunter2" not in json.dumps(recorded)

    targets = dms.describe_endpoints(Filters=[{"Name": "endpoint-type", "Values": ["target"]}])["Endpoints"]
    assert target["EndpointArn"] in {e["EndpointArn"] for e in targets} and {e["EndpointType"] for e in targets} == {
        "TARGET"}
    modified = dms.modify_endpoint(EndpointArn=target["EndpointArn"], S3Settings={"DataFormat": "csv"})["Endpoint"]
    assert modified["S3Settings"]["DataFormat"] == "csv" and modified["S3Settings"]["BucketName"] == bucket
    renamed = dms.modify_endpoint(EndpointArn=source["EndpointArn"], EndpointIdentifier=unique("renamed"))["Endpoint"]
    assert renamed["EndpointArn"] == source["EndpointArn"] and renamed["DatabaseName"] == str(shop)

    code, message = error_of(lambda: dms.create_endpoint(
        EndpointIdentifier=renamed["EndpointIdentifier"], EndpointType="source", EngineName="sqlite",
        DatabaseName="x.db"))
    assert code == "ResourceAlreadyExistsFault" and "EndpointIdentifier" in message
    code, message = error_of(lambda: dms.create_endpoint(
        EndpointIdentifier=unique("bad"), EndpointType="source", EngineName="oracle", ServerName="db"))
    assert code == "InvalidParameterValueException" and "EngineName" in message and "postgres" in message
    code, message = error_of(lambda: dms.create_endpoint(
        EndpointIdentifier=unique("bad"), EndpointType="target", EngineName="s3", S3Settings={}))
    assert code == "InvalidParameterValueException" and "BucketName" in message
    code, message = error_of(lambda: dms.create_endpoint(
        EndpointIdentifier="1-starts-with-a-digit", EndpointType="source", EngineName="sqlite", DatabaseName="x"))
    assert code == "InvalidParameterValueException" and "EndpointIdentifier" in message

    dms.delete_endpoint(EndpointArn=target["EndpointArn"])
    dms.get_waiter("endpoint_deleted").wait(
        Filters=[{"Name": "endpoint-arn", "Values": [target["EndpointArn"]]}], WaiterConfig=FAST)
    code, _ = error_of(lambda: dms.delete_endpoint(EndpointArn=target["EndpointArn"]))
    assert code == "ResourceNotFoundFault"


def test_describe_pages_with_marker_and_refuses_bad_filters(dms, tmp_path):
    made = {sqlite_source(dms, tmp_path / f"{i}.db")["EndpointArn"] for i in range(23)}
    pages = list(dms.get_paginator("describe_endpoints").paginate(
        Filters=[{"Name": "engine-name", "Values": ["sqlite"]}], PaginationConfig={"PageSize": 20}))
    assert len(pages) >= 2 and "Marker" in pages[0]
    seen = [e["EndpointArn"] for p in pages for e in p["Endpoints"]]
    assert made <= set(seen) and len(seen) == len(set(seen))
    code, message = error_of(lambda: dms.describe_endpoints(Filters=[{"Name": "colour", "Values": ["red"]}]))
    assert code == "InvalidParameterValueException" and "colour" in message
    code, message = error_of(lambda: dms.describe_endpoints(MaxRecords=5))
    assert code == "InvalidParameterValueException" and "MaxRecords" in message
    code, _ = error_of(lambda: dms.describe_endpoints(Filters=[{"Name": "endpoint-id", "Values": ["none-such"]}]))
    assert code == "ResourceNotFoundFault"


def test_replication_instance_becomes_available_and_tests_connections(dms, shop, tmp_path):
    rep = instance(dms)
    assert rep["ReplicationInstanceArn"].split(":")[5] == "rep"
    source = sqlite_source(dms, shop)
    answer = dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"],
                                 EndpointArn=source["EndpointArn"])["Connection"]
    assert answer["Status"] == "testing"
    dms.get_waiter("test_connection_succeeds").wait(
        Filters=[{"Name": "endpoint-arn", "Values": [source["EndpointArn"]]}], WaiterConfig=FAST)

    missing = sqlite_source(dms, tmp_path / "no" / "such.db")
    dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"], EndpointArn=missing["EndpointArn"])
    connection = dms.describe_connections(Filters=[{"Name": "endpoint-arn", "Values": [missing["EndpointArn"]]}])
    assert connection["Connections"][0]["Status"] == "failed"
    assert "SQLite" in connection["Connections"][0]["LastFailureMessage"]

    mysql = dms.create_endpoint(EndpointIdentifier=unique("my"), EndpointType="source", EngineName="mysql",
                                ServerName="127.0.0.1", Port=1, DatabaseName="shop")["Endpoint"]
    dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"], EndpointArn=mysql["EndpointArn"])
    connection = dms.describe_connections(Filters=[{"Name": "endpoint-arn", "Values": [mysql["EndpointArn"]]}])
    assert connection["Connections"][0]["Status"] == "failed"  # no driver installed, or nothing on port 1
    assert "MySQL" in connection["Connections"][0]["LastFailureMessage"]

    nowhere = s3_target(dms, unique("no-such-bucket"))
    dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"], EndpointArn=nowhere["EndpointArn"])
    connection = dms.describe_connections(Filters=[{"Name": "endpoint-arn", "Values": [nowhere["EndpointArn"]]}])
    assert connection["Connections"][0]["Status"] == "failed"
    assert "no-such-bucket" in connection["Connections"][0]["LastFailureMessage"]

    code, message = error_of(lambda: dms.create_replication_instance(
        ReplicationInstanceIdentifier=rep["ReplicationInstanceIdentifier"], ReplicationInstanceClass="dms.t3.micro"))
    assert code == "ResourceAlreadyExistsFault" and "ReplicationInstanceIdentifier" in message
    code, _ = error_of(lambda: dms.test_connection(ReplicationInstanceArn=rep["ReplicationInstanceArn"] + "x",
                                                   EndpointArn=source["EndpointArn"]))
    assert code == "ResourceNotFoundFault"


def test_full_load_csv_with_mappings_then_statistics(dms, s3, shop, bucket):
    rep = instance(dms)
    source, target = sqlite_source(dms, shop), s3_target(dms, bucket, AddColumnName=True)
    mappings = {"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
         "object-locator": {"schema-name": "%", "table-name": "%"}},
        {"rule-type": "selection", "rule-id": "2", "rule-name": "no-audit", "rule-action": "exclude",
         "object-locator": {"schema-name": "main", "table-name": "audit%"}},
        {"rule-type": "transformation", "rule-id": "3", "rule-name": "rename", "rule-target": "table",
         "rule-action": "rename", "value": "clients",
         "object-locator": {"schema-name": "main", "table-name": "customers"}},
        {"rule-type": "transformation", "rule-id": "4", "rule-name": "schema", "rule-target": "schema",
         "rule-action": "rename", "value": "shop", "object-locator": {"schema-name": "main"}},
        {"rule-type": "transformation", "rule-id": "5", "rule-name": "drop-city", "rule-target": "column",
         "rule-action": "remove-column",
         "object-locator": {"schema-name": "main", "table-name": "customers", "column-name": "city"}},
        {"rule-type": "transformation", "rule-id": "6", "rule-name": "up", "rule-target": "column",
         "rule-action": "convert-uppercase",
         "object-locator": {"schema-name": "main", "table-name": "orders", "column-name": "%"}},
    ]}
    task = dms.create_replication_task(
        ReplicationTaskIdentifier=unique("load"), SourceEndpointArn=source["EndpointArn"],
        TargetEndpointArn=target["EndpointArn"], ReplicationInstanceArn=rep["ReplicationInstanceArn"],
        MigrationType="full-load", TableMappings=json.dumps(mappings))["ReplicationTask"]
    arn = task["ReplicationTaskArn"]
    assert task["Status"] == "creating" and ":task:" in arn
    code, _ = error_of(lambda: dms.delete_endpoint(EndpointArn=source["EndpointArn"]))
    assert code == "InvalidResourceStateFault"
    dms.get_waiter("replication_task_ready").wait(
        Filters=[{"Name": "replication-task-arn", "Values": [arn]}], WaiterConfig=FAST)
    dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
    done = wait_task(dms, arn, "stopped")
    assert done["StopReason"] == "Stop Reason FULL_LOAD_ONLY_FINISHED"
    assert done["ReplicationTaskStats"]["TablesLoaded"] == 2
    assert done["ReplicationTaskStats"]["FullLoadProgressPercent"] == 100

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/")["Contents"])
    assert keys == ["raw/shop/clients/LOAD00000001.csv", "raw/shop/orders/LOAD00000001.csv"]
    body = s3.get_object(Bucket=bucket, Key="raw/shop/clients/LOAD00000001.csv")["Body"].read().decode()
    assert list(csv.reader(io.StringIO(body))) == [["id", "name"], ["1", "ann"], ["2", "bob"], ["3", "cy"]]
    body = s3.get_object(Bucket=bucket, Key="raw/shop/orders/LOAD00000001.csv")["Body"].read().decode()
    assert body.splitlines()[0] == "ID,CUSTOMER,TOTAL"

    stats = dms.describe_table_statistics(ReplicationTaskArn=arn)["TableStatistics"]
    assert [(t["SchemaName"], t["TableName"], t["FullLoadRows"], t["TableState"]) for t in stats] == [
        ("main", "customers", 3, "Table completed"), ("main", "orders", 2, "Table completed")]

    code, message = error_of(lambda: dms.start_replication_task(ReplicationTaskArn=arn,
                                                                 StartReplicationTaskType="start-replication"))
    assert code == "InvalidResourceStateFault" and "reload-target" in message
    dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="reload-target")
    assert wait_task(dms, arn, "stopped")["ReplicationTaskStats"]["TablesLoaded"] == 2
    dms.delete_replication_task(ReplicationTaskArn=arn)
    dms.get_waiter("replication_task_deleted").wait(
        Filters=[{"Name": "replication-task-arn", "Values": [arn]}], WaiterConfig=FAST)


def test_task_errors_name_the_field(dms, shop, bucket, tmp_path):
    rep = instance(dms)
    source, target = sqlite_source(dms, shop), s3_target(dms, bucket)

    def create(**changes):
        params = {"ReplicationTaskIdentifier": unique("t"), "SourceEndpointArn": source["EndpointArn"],
                  "TargetEndpointArn": target["EndpointArn"], "ReplicationInstanceArn": rep["ReplicationInstanceArn"],
                  "MigrationType": "full-load", "TableMappings": ALL_TABLES, **changes}
        return dms.create_replication_task(**params)

    code, message = error_of(lambda: create(TableMappings="{not json"))
    assert code == "InvalidParameterValueException" and "TableMappings" in message
    code, message = error_of(lambda: create(TableMappings=json.dumps({"rules": [
        {"rule-type": "transformation", "rule-name": "r", "rule-target": "table", "rule-action": "explode",
         "object-locator": {"schema-name": "%"}}]})))
    assert code == "InvalidParameterValueException" and "rule-action" in message
    code, message = error_of(lambda: create(MigrationType="cdc"))
    assert code == "InvalidParameterValueException" and "MigrationType" in message
    code, message = error_of(lambda: create(SourceEndpointArn=target["EndpointArn"]))
    assert code == "InvalidParameterValueException" and "SourceEndpointArn" in message
    code, message = error_of(lambda: create(TargetEndpointArn=target["EndpointArn"] + "nope"))
    assert code == "ResourceNotFoundFault" and "TargetEndpointArn" in message
    code, _ = error_of(lambda: dms.stop_replication_task(ReplicationTaskArn=rep["ReplicationInstanceArn"]))
    assert code == "ResourceNotFoundFault"

    # A source that cannot be read fails the task with a message saying why.
    broken = sqlite_source(dms, tmp_path / "gone.db")
    task = create(SourceEndpointArn=broken["EndpointArn"])["ReplicationTask"]
    code, _ = error_of(lambda: dms.start_replication_task(ReplicationTaskArn=task["ReplicationTaskArn"],
                                                          StartReplicationTaskType="start-replication"))
    assert code == "InvalidResourceStateFault"  # still creating
    dms.get_waiter("replication_task_ready").wait(
        Filters=[{"Name": "replication-task-arn", "Values": [task["ReplicationTaskArn"]]}], WaiterConfig=FAST)
    dms.start_replication_task(ReplicationTaskArn=task["ReplicationTaskArn"],
                               StartReplicationTaskType="start-replication")
    failed = wait_task(dms, task["ReplicationTaskArn"], "failed")
    assert "unable to open database file" in failed["LastFailureMessage"]
    code, _ = error_of(lambda: dms.delete_replication_instance(ReplicationInstanceArn=rep["ReplicationInstanceArn"]))
    assert code == "InvalidResourceStateFault"
