"""SQL on streams through a real boto3 `kinesisanalytics` client: an application reads a Kinesis stream and
runs a tumbling-window count, a sliding-window average and RANDOM_CUT_FOREST, each pump writing to a
Kinesis stream of its own."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/analytics"
CODE = '''
CREATE OR REPLACE STREAM "COUNTS" (ticker VARCHAR(4), trades INTEGER);
CREATE OR REPLACE PUMP "COUNT_PUMP" AS INSERT INTO "COUNTS"
  SELECT STREAM ticker, COUNT(*) FROM "SOURCE_SQL_STREAM_001"
  GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '2' SECOND);
CREATE OR REPLACE STREAM "AVERAGES" (ticker VARCHAR(4), price DOUBLE, avg_price DOUBLE);
CREATE OR REPLACE PUMP "AVERAGE_PUMP" AS INSERT INTO "AVERAGES"
  SELECT STREAM ticker, price, AVG(price) OVER W1 FROM "SOURCE_SQL_STREAM_001"
  WINDOW W1 AS (PARTITION BY ticker RANGE INTERVAL '1' MINUTE PRECEDING);
CREATE OR REPLACE STREAM "ANOMALIES" (price DOUBLE, ANOMALY_SCORE DOUBLE);
CREATE OR REPLACE PUMP "RCF_PUMP" AS INSERT INTO "ANOMALIES"
  SELECT STREAM price, ANOMALY_SCORE
  FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM price FROM "SOURCE_SQL_STREAM_001"), 50, 64, 1000, 1));
'''


def _all(kinesis, stream: str) -> list[dict]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out += [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
    return out


def _wait(kinesis, stream: str, done, timeout: float = 40) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _all(kinesis, stream)
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


@pytest.mark.slow
def test_windows_and_random_cut_forest_over_a_stream(server):
    kinesis, analytics = server.client("kinesis"), server.client("kinesisanalytics")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{tag}" for k in ("in", "counts", "averages", "anomalies")}
    for key, stream in names.items():
        kinesis.create_stream(StreamName=stream, ShardCount=2 if key == "in" else 1)
    arn = {k: kinesis.describe_stream_summary(StreamName=v)["StreamDescriptionSummary"]["StreamARN"]
           for k, v in names.items()}
    app = f"app-{tag}"
    created = analytics.create_application(
        ApplicationName=app, ApplicationCode=CODE,
        Inputs=[{"NamePrefix": "SOURCE_SQL_STREAM", "KinesisStreamsInput": {"ResourceARN": arn["in"],
                                                                             "RoleARN": ROLE},
                 "InputSchema": {"RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {
                     "JSONMappingParameters": {"RecordRowPath": "$"}}},
                     "RecordColumns": [{"Name": "ticker", "SqlType": "VARCHAR(4)", "Mapping": "$.ticker"},
                                       {"Name": "price", "SqlType": "DOUBLE", "Mapping": "$.price"}]}}],
        Outputs=[{"Name": stream.upper(), "KinesisStreamsOutput": {"ResourceARN": arn[stream.lower()],
                                                                   "RoleARN": ROLE},
                  "DestinationSchema": {"RecordFormatType": "JSON"}}
                 for stream in ("COUNTS", "AVERAGES", "ANOMALIES")])
    assert created["ApplicationSummary"]["ApplicationStatus"] == "READY"
    detail = analytics.describe_application(ApplicationName=app)["ApplicationDetail"]
    assert detail["InputDescriptions"][0]["InAppStreamNames"] == ["SOURCE_SQL_STREAM_001"]
    analytics.start_application(ApplicationName=app, InputConfigurations=[{
        "Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"}}])
    assert analytics.describe_application(ApplicationName=app)["ApplicationDetail"]["ApplicationStatus"] == "RUNNING"

    prices = {"AAA": [10.0, 11.0, 12.0, 13.0] * 10, "BBB": [50.0, 51.0] * 20}
    events = [{"ticker": t, "price": p} for t, values in prices.items() for p in values]
    events[7] = {"ticker": "AAA", "price": 900.0}  # the anomaly
    prices["AAA"][7] = 900.0
    kinesis.put_records(StreamName=names["in"], Records=[
        {"PartitionKey": e["ticker"], "Data": json.dumps(e).encode()} for e in events])

    counts = _wait(kinesis, names["counts"], lambda rows: sum(r["trades"] for r in rows) >= len(events))
    assert sum(r["trades"] for r in counts) == len(events)
    assert {r["ticker"] for r in counts} == {"AAA", "BBB"}
    averages = _wait(kinesis, names["averages"], lambda rows: len(rows) >= len(events))
    assert len(averages) == len(events)
    for ticker, values in prices.items():  # one PutRecords: every row arrived at once, so each row's range
        mine = [r for r in averages if r["ticker"] == ticker]  # holds all of its ticker's rows
        assert len(mine) == len(values)
        assert all(abs(r["avg_price"] - sum(values) / len(values)) < 1e-9 for r in mine)
    anomalies = _wait(kinesis, names["anomalies"], lambda rows: len(rows) >= len(events))
    assert len(anomalies) == len(events)
    assert max(anomalies, key=lambda r: r["ANOMALY_SCORE"])["price"] == 900.0

    analytics.stop_application(ApplicationName=app)
    assert analytics.describe_application(ApplicationName=app)["ApplicationDetail"]["ApplicationStatus"] == "READY"
    assert app in [a["ApplicationName"] for a in analytics.list_applications()["ApplicationSummaries"]]
    analytics.delete_application(ApplicationName=app, CreateTimestamp=detail["CreateTimestamp"])
    with pytest.raises(ClientError) as info:
        analytics.describe_application(ApplicationName=app)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_code_that_cannot_run_is_refused(server):
    analytics = server.client("kinesisanalytics")
    with pytest.raises(ClientError) as info:
        analytics.create_application(ApplicationName=f"bad-{uuid.uuid4().hex[:6]}",
                                     ApplicationCode="SELECT 1 FROM nowhere;")
    assert info.value.response["Error"]["Code"] == "CodeValidationException"
    assert "CREATE PUMP" in str(info.value)


def _start_filter(server) -> None:
    """Streams src and big, and an application "filter" copying src's numbers >= 100 to big, seen at work."""
    kinesis, analytics = server.client("kinesis"), server.client("kinesisanalytics")
    for stream in ("src", "big"):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    arns = {s: kinesis.describe_stream_summary(StreamName=s)["StreamDescriptionSummary"]["StreamARN"]
            for s in ("src", "big")}
    analytics.create_application(
        ApplicationName="filter", ApplicationCode='''
            CREATE OR REPLACE STREAM "BIG" (n INTEGER);
            CREATE OR REPLACE PUMP "P" AS INSERT INTO "BIG"
              SELECT STREAM n FROM "SOURCE_SQL_STREAM_001" WHERE n >= 100;''',
        Inputs=[{"NamePrefix": "SOURCE_SQL_STREAM", "KinesisStreamsInput": {"ResourceARN": arns["src"],
                                                                             "RoleARN": ROLE},
                 "InputSchema": {"RecordFormat": {"RecordFormatType": "CSV", "MappingParameters": {
                     "CSVMappingParameters": {"RecordRowDelimiter": "\n", "RecordColumnDelimiter": ","}}},
                     "RecordColumns": [{"Name": "n", "SqlType": "INTEGER"}]}}],
        Outputs=[{"Name": "BIG", "KinesisStreamsOutput": {"ResourceARN": arns["big"], "RoleARN": ROLE},
                  "DestinationSchema": {"RecordFormatType": "CSV"}}])
    analytics.start_application(ApplicationName="filter", InputConfigurations=[{
        "Id": "1.1", "InputStartingPositionConfiguration": {"InputStartingPosition": "TRIM_HORIZON"}}])
    kinesis.put_record(StreamName="src", PartitionKey="k", Data=b"5\n150\n")
    deadline = time.monotonic() + 30
    while len(_raw(kinesis, "big")) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Positions are saved right after a tick's output is written; a crash in between would write that
    # output again (at least once). Let the tick finish, so the check below can be exact.
    time.sleep(1.5)


def _resumed_filter(server) -> None:
    """The filter runs on `server`, from where it was."""
    kinesis, analytics = server.client("kinesis"), server.client("kinesisanalytics")
    assert analytics.describe_application(ApplicationName="filter")["ApplicationDetail"][
        "ApplicationStatus"] == "RUNNING"
    kinesis.put_record(StreamName="src", PartitionKey="k", Data=b"7\n300\n")
    deadline = time.monotonic() + 30
    while len(_raw(kinesis, "big")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert _raw(kinesis, "big") == [b"150\n", b"300\n"]  # resumed where it was: nothing read twice


@pytest.mark.slow
def test_a_running_application_resumes_after_kill_9(tmp_path):
    from sagelab.embedded import ServerProcess

    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        _start_filter(first)
    finally:
        first.kill()
    second = ServerProcess(home).start()
    try:
        _resumed_filter(second)
    finally:
        second.stop()


@pytest.mark.slow
def test_a_running_application_moves_to_a_live_server_when_its_own_dies(tmp_path, postgres_cluster):
    from sagelab.embedded import ServerProcess

    url = postgres_cluster.create_database(f"analytics_{uuid.uuid4().hex[:10]}")
    env = {"SAGELAB_DATABASE_URL": url, "SAGELAB_TAKEOVER_SCAN_SECONDS": "0.3"}
    first = ServerProcess(tmp_path / "home", env=env).start()
    second = ServerProcess(tmp_path / "home", env=env).start()
    try:
        _start_filter(first)
        first.kill()
        _resumed_filter(second)
    finally:
        first.kill()
        second.stop()


def _raw(kinesis, stream: str) -> list[bytes]:
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
