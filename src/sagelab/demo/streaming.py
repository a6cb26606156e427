"""The demo's streaming stage: click events -> a Kinesis stream -> Firehose -> the lake -> a Glue crawler ->
Athena, whose count must match what was sent."""

from __future__ import annotations

import json
import time

from sagelab.demo.common import BUCKET, ROLE, wait_for
from sagelab.demo.data import DATABASE

EVENTS = 2000
TABLE = "clicks"
PREFIX = f"streaming/{TABLE}/"


def stream_to_lake(kinesis, firehose, s3, glue, athena, stamp: str, out) -> bool:
    stream, delivery, crawler = f"demo-clicks-{stamp}", f"demo-clicks-to-lake-{stamp}", f"demo-clicks-{stamp}"
    out.write(f"\nStreaming {EVENTS} click events: Kinesis stream {stream} (2 shards) -> Firehose {delivery} "
              f"-> s3://{BUCKET}/{PREFIX} ...\n")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": PREFIX + "dt=!{timestamp:yyyy-MM-dd}/",
            "ErrorOutputPrefix": "streaming/errors/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
    shards: dict[str, int] = {}
    for start in range(0, EVENTS, 500):
        answer = kinesis.put_records(StreamName=stream, Records=[
            {"PartitionKey": f"user-{i % 97}", "Data": json.dumps({
                "user": f"user-{i % 97}", "page": f"/p/{i % 13}", "ms": 100 + i % 900}).encode() + b"\n"}
            for i in range(start, min(start + 500, EVENTS))])
        if answer["FailedRecordCount"]:
            out.write(f"  {answer['FailedRecordCount']} records were refused\n")
            return False
        for record in answer["Records"]:
            shards[record["ShardId"]] = shards.get(record["ShardId"], 0) + 1
    out.write("  records per shard (MD5 of the partition key): "
              + ", ".join(f"{k} {v}" for k, v in sorted(shards.items())) + "\n")
    delivered, objects = 0, 0
    deadline = time.monotonic() + 60
    while delivered < EVENTS and time.monotonic() < deadline:
        time.sleep(0.5)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])]
        objects = len(keys)
        delivered = sum(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().count(b"\n") for k in keys)
    out.write(f"  Firehose delivered {delivered} records in {objects} object(s)\n")
    if delivered != EVENTS:
        return False
    glue.create_crawler(Name=crawler, Role=ROLE, DatabaseName=DATABASE,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{PREFIX}"}]})
    glue.start_crawler(Name=crawler)
    wait_for([crawler], lambda n: glue.get_crawler(Name=n)["Crawler"],
             lambda c: "Completed" if c["State"] == "READY" and c.get("LastCrawl") else c["State"], out)
    query = f"SELECT count(*) AS events, count(DISTINCT dt) AS days FROM {TABLE}"
    query_id = athena.start_query_execution(
        QueryString=query, QueryExecutionContext={"Database": DATABASE},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena/"})["QueryExecutionId"]
    state = wait_for([query_id], lambda q: athena.get_query_execution(QueryExecutionId=q)["QueryExecution"],
                     lambda e: {"SUCCEEDED": "Completed", "FAILED": "Failed", "CANCELLED": "Stopped"}.get(
                         e["Status"]["State"], e["Status"]["State"]), out)[query_id]
    if state["Status"]["State"] != "SUCCEEDED":
        out.write(f"  {state['Status']['State']}: {state['Status'].get('StateChangeReason', '')}\n")
        return False
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    counted = int(rows[1]["Data"][0]["VarCharValue"])
    out.write(f"Athena: {query}\n  {counted} events counted in the lake for {EVENTS} sent\n")
    return counted == EVENTS
