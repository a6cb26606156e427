"""Glue Spark ETL jobs (glueetl) through a real boto3 client: a PySpark script on a local Spark.

Spark's JVM takes many seconds to start on a small machine, so the end-to-end tests share their work: one
script exercises the catalog read, the transforms and both from_options formats, and its second run checks
the bookmark; a second job fails; a third is stopped while Spark starts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import botocore.exceptions
import pytest
from conftest import unique
from lake_helpers import ROLE, crawl, select
from test_jobs import wait_run

PIPELINE = b'''
import json, sys
import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "bucket", "report", "extras"])
sc = SparkContext()
glue_context = GlueContext(sc)
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
bucket = args["bucket"]

sales = glue_context.create_dynamic_frame.from_catalog(database=args["database"], table_name="sales",
                                                       transformation_ctx="sales")
mapped = ApplyMapping.apply(frame=sales, mappings=[
    ("order_id", "long", "order_id", "long"), ("region", "string", "region", "string"),
    ("amount", "double", "amount_usd", "double"), ("year", "string", "year", "int")])
glue_context.write_dynamic_frame.from_options(
    frame=mapped, connection_type="s3", format="parquet",
    connection_options={"path": f"s3://{bucket}/curated/orders/", "partitionKeys": ["region"]})
report = {"mapped_fields": [f.name for f in mapped.schema().fields],
          "sales_orders": sorted(r["order_id"] for r in mapped.toDF().collect())}

if args["extras"] == "yes":
    pruned = glue_context.create_dynamic_frame.from_catalog(database=args["database"], table_name="sales",
                                                            push_down_predicate="year = '2025'")
    report["pruned"] = sorted(r["order_id"] for r in pruned.toDF().collect())
    people = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{bucket}/people/"]}, format="csv",
        format_options={"withHeader": True})
    over_30 = Filter.apply(frame=people, f=lambda r: r["age"] > 30)
    renamed = RenameField.apply(frame=SelectFields.apply(frame=people, paths=["name", "age"]),
                                old_name="name", new_name="person")
    report["people"] = sorted(r["name"] for r in over_30.toDF().collect())
    report["renamed"] = [f.name for f in renamed.schema().fields]
    raw = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{bucket}/noheader/"]}, format="csv")
    report["noheader"] = [f.name for f in raw.schema().fields]
    events = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{bucket}/events/"]}, format="json")
    resolved = ResolveChoice.apply(frame=events, specs=[("score", "cast:long")])
    report["scores"] = sorted(r["score"] for r in resolved.toDF().collect() if r["score"] is not None)
    report["score_type"] = dict((f.name, f.dataType.simpleString()) for f in resolved.schema().fields)["score"]
    report["dropped"] = sorted(f.name for f in DropNullFields.apply(frame=events).schema().fields)
    tables = Relationalize.apply(frame=DropFields.apply(frame=events, paths=["nothing"]),
                                 staging_path=f"s3://{bucket}/tmp/", name="root")
    report["tables"] = sorted(tables.keys())
    root = tables.select("root").toDF()
    report["root_fields"] = sorted(root.columns)
    tags = tables.select("root_tags").toDF()
    report["tags"] = sorted((r["index"], r["tags.val"]) for r in tags.collect())
job.commit()
boto3.client("s3").put_object(Bucket=bucket, Key=args["report"], Body=json.dumps(report).encode())
'''

FAILING = b'''
from awsglue.context import GlueContext
from pyspark.context import SparkContext

glue_context = GlueContext(SparkContext.getOrCreate())
df = glue_context.spark_session.createDataFrame([(1, "a")], ["id", "name"])
print("selecting a column that is not there")
df.select("no_such_column").show()
'''

SLOW = b'''
import time
from pyspark.context import SparkContext

sc = SparkContext()
print("spark is up", flush=True)
time.sleep(120)
'''


def create_etl_job(glue, s3, bucket: str, script: bytes, **kwargs) -> str:
    name = unique("etl")
    s3.put_object(Bucket=bucket, Key=f"scripts/{name}.py", Body=script)
    sizing = {} if "MaxCapacity" in kwargs else {"WorkerType": "G.1X", "NumberOfWorkers": 2}
    params = {**sizing, "GlueVersion": "4.0", **kwargs}
    glue.create_job(Name=name, Role=ROLE, Command={"Name": "glueetl", "PythonVersion": "3",
                                                   "ScriptLocation": f"s3://{bucket}/scripts/{name}.py"}, **params)
    return name


def report(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.slow
def test_catalog_to_partitioned_parquet_with_bookmarks(glue, s3, athena, bucket):
    pytest.importorskip("pyspark")
    raw_db, curated_db = unique("raw"), unique("curated")
    s3.put_object(Bucket=bucket, Key="sales/year=2024/a.csv",
                  Body=b"order_id,region,amount\n1,eu,10.5\n2,us,20.0\n3,eu,4.5\n")
    s3.put_object(Bucket=bucket, Key="sales/year=2025/b.csv", Body=b"order_id,region,amount\n4,us,1.0\n5,apac,2.0\n")
    s3.put_object(Bucket=bucket, Key="people/p.csv", Body=b"name,age\nana,34\nbo,25\ncy,41\n")
    s3.put_object(Bucket=bucket, Key="noheader/n.csv", Body=b"x,1\ny,2\n")
    s3.put_object(Bucket=bucket, Key="events/e.json", Body=(
        b'{"id": 1, "score": 7, "user": {"name": "ana", "city": "Oslo"}, "tags": ["a", "b"], "gone": null}\n'
        b'{"id": 2, "score": "12", "user": {"name": "bo", "city": "Rome"}, "tags": ["c"], "gone": null}\n'))
    crawler = unique("crawl")
    glue.create_crawler(Name=crawler, Role=ROLE, DatabaseName=raw_db, Targets={"S3Targets": [
        {"Path": f"s3://{bucket}/sales/"}]})
    assert crawl(glue, crawler)["LastCrawl"]["Status"] == "SUCCEEDED"

    name = create_etl_job(glue, s3, bucket, PIPELINE, DefaultArguments={
        "--database": raw_db, "--bucket": bucket, "--job-bookmark-option": "job-bookmark-enable"})
    job = glue.get_job(JobName=name)["Job"]
    assert (job["Command"]["Name"], job["WorkerType"], job["NumberOfWorkers"], job["MaxCapacity"]) == (
        "glueetl", "G.1X", 2, 2.0)
    first = glue.start_job_run(JobName=name, Arguments={"--report": "reports/1.json", "--extras": "yes"})["JobRunId"]
    run = wait_run(glue, name, first, timeout=300)
    assert run["JobRunState"] == "SUCCEEDED", run
    assert (run["WorkerType"], run["NumberOfWorkers"], run["LogGroupName"]) == ("G.1X", 2, "/aws-glue/jobs")
    out = report(s3, bucket, "reports/1.json")
    assert out["sales_orders"] == [1, 2, 3, 4, 5]
    assert out["mapped_fields"] == ["order_id", "region", "amount_usd", "year"]
    assert out["pruned"] == [4, 5]
    assert out["people"] == ["ana", "cy"] and out["renamed"] == ["person", "age"]
    assert out["noheader"] == ["col0", "col1"]
    assert out["scores"] == [7, 12] and out["score_type"] == "bigint"
    assert "gone" not in out["dropped"] and "user" in out["dropped"]
    assert out["tables"] == ["root", "root_tags"]
    assert {"user.name", "user.city", "tags", "score"} <= set(out["root_fields"])
    assert out["tags"] == [[0, "a"], [0, "c"], [1, "b"]]

    # The output is partitioned Parquet that the crawler catalogs and Athena queries.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="curated/orders/")["Contents"]]
    assert {k.split("/")[2] for k in keys} == {"region=eu", "region=us", "region=apac"}
    assert all(k.endswith(".parquet") for k in keys)
    output_crawler = unique("crawl")
    glue.create_crawler(Name=output_crawler, Role=ROLE, DatabaseName=curated_db, Targets={"S3Targets": [
        {"Path": f"s3://{bucket}/curated/orders/"}]})
    assert crawl(glue, output_crawler)["LastCrawl"]["Status"] == "SUCCEEDED"
    table = glue.get_table(DatabaseName=curated_db, Name="orders")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["region"]
    rows = select(athena, "SELECT region, count(*), sum(amount_usd) FROM orders GROUP BY region ORDER BY region",
                  curated_db, f"s3://{bucket}/athena/")
    assert rows[1:] == [["apac", "1", "2.0"], ["eu", "2", "15.0"], ["us", "2", "21.0"]]

    # A second run with the bookmark reads only the file that arrived since.
    time.sleep(1.1)  # S3 LastModified has second resolution
    s3.put_object(Bucket=bucket, Key="sales/year=2025/c.csv", Body=b"order_id,region,amount\n6,eu,3.0\n")
    second = glue.start_job_run(JobName=name, Arguments={"--report": "reports/2.json", "--extras": "no"})["JobRunId"]
    run = wait_run(glue, name, second, timeout=300)
    assert run["JobRunState"] == "SUCCEEDED", run
    assert report(s3, bucket, "reports/2.json")["sales_orders"] == [6]
    bookmark = glue.get_job_bookmark(JobName=name)["JobBookmarkEntry"]
    assert bookmark["RunId"] == second and "sales" in json.loads(bookmark["JobBookmark"])


@pytest.mark.slow
def test_failing_and_stopped_spark_jobs(glue, s3, bucket, server):
    pytest.importorskip("pyspark")
    failing = create_etl_job(glue, s3, bucket, FAILING, MaxCapacity=2)
    slow = create_etl_job(glue, s3, bucket, SLOW)
    failed_id = glue.start_job_run(JobName=failing)["JobRunId"]
    slow_id = glue.start_job_run(JobName=slow)["JobRunId"]
    log = server.home / "logs" / "GlueSparkJobs" / slow / f"{slow_id}.log"
    deadline = time.monotonic() + 240
    while not (log.exists() and "spark is up" in log.read_text()):
        assert time.monotonic() < deadline, "the slow job never started Spark"
        time.sleep(0.3)
    assert glue.batch_stop_job_run(JobName=slow, JobRunIds=[slow_id])["SuccessfulSubmissions"]
    assert wait_run(glue, slow, slow_id)["JobRunState"] == "STOPPED"
    _assert_no_process_mentions(slow_id)

    run = wait_run(glue, failing, failed_id, timeout=300)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith("pyspark.errors.exceptions.captured.AnalysisException: "), run
    assert "no_such_column" in run["ErrorMessage"]

    # CloudWatch Logs: the script's stdout in /aws-glue/jobs/output, its stderr (traceback) in /error.
    logs = server.client("logs")
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws-glue/jobs")["logGroups"]]
    assert groups == ["/aws-glue/jobs/error", "/aws-glue/jobs/output"]
    streams = logs.describe_log_streams(logGroupName="/aws-glue/jobs/output")["logStreams"]
    assert {failed_id, slow_id} <= {s["logStreamName"] for s in streams}
    output = [e["message"] for e in logs.get_log_events(logGroupName="/aws-glue/jobs/output",
                                                        logStreamName=failed_id)["events"]]
    assert "selecting a column that is not there" in output
    errors = [e["message"] for e in logs.get_log_events(logGroupName="/aws-glue/jobs/error",
                                                        logStreamName=failed_id, limit=10000)["events"]]
    assert run["ErrorMessage"] in errors


def _assert_no_process_mentions(run_id: str) -> None:
    """Stopping a run stops its JVM too (its command line names the run's work folder)."""
    deadline = time.monotonic() + 30
    while True:
        left = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if run_id.encode() in cmdline and int(proc.name) != os.getpid():
                    left.append(proc.name)
        if not left:
            return
        assert time.monotonic() < deadline, f"processes of the stopped run are still running: {left}"
        time.sleep(0.2)


def test_local_spark_is_sized_from_the_workers():
    from sagelab.glue.spark import local_threads, submit_args

    # The executors' vCPUs (every worker but the driver), at most the machine's cores.
    assert local_threads("G.1X", 2, cores=16) == 4
    assert local_threads("G.2X", 10, cores=16) == 16
    assert local_threads("G.1X", 10, cores=2) == 2
    args = submit_args(4, 2, {"spark.ui.enabled": "false"})
    assert args == "--master local[4] --driver-memory 2g --conf spark.ui.enabled=false pyspark-shell"


def test_glueetl_validation(glue, bucket):
    script = f"s3://{bucket}/x.py"
    command = {"Name": "glueetl", "ScriptLocation": script}
    bad = [
        ({"GlueVersion": "1.0"}, "GlueVersion"),
        ({"WorkerType": "G.025X", "NumberOfWorkers": 2}, "gluestreaming"),
        ({"WorkerType": "Standard", "NumberOfWorkers": 2}, "WorkerType Standard"),
        ({"WorkerType": "G.1X"}, "NumberOfWorkers"),
        ({"NumberOfWorkers": 3}, "WorkerType"),
        ({"WorkerType": "G.2X", "NumberOfWorkers": 1}, "NumberOfWorkers must be at least 2"),
        ({"WorkerType": "G.1X", "NumberOfWorkers": 2, "MaxCapacity": 2.0}, "MaxCapacity cannot be set"),
        ({"MaxCapacity": 1.0}, "MaxCapacity for a glueetl job"),
        ({"MaxCapacity": 2.5}, "MaxCapacity for a glueetl job"),
        ({"MaxCapacity": 101.0}, "from 2 to 100"),
        ({"Command": {**command, "PythonVersion": "2"}}, "Command.PythonVersion"),
        ({"Command": {**command, "Name": "gluestreaming"}}, "Command.Name"),
    ]
    for params, field in bad:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            glue.create_job(Name=unique("etl"), Role=ROLE, **{"Command": command, **params})
        assert excinfo.value.response["Error"]["Code"] == "InvalidInputException", params
        assert field in excinfo.value.response["Error"]["Message"], (params, excinfo.value.response["Error"])

    name = unique("etl")
    glue.create_job(Name=name, Role=ROLE, Command=command, MaxCapacity=4.0)
    job = glue.get_job(JobName=name)["Job"]
    assert (job["WorkerType"], job["NumberOfWorkers"], job["MaxCapacity"], job["GlueVersion"]) == (
        "G.1X", 4, 4.0, "3.0")
    assert job["Command"] == {"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"}
    glue.update_job(JobName=name, JobUpdate={"Role": ROLE, "Command": command, "WorkerType": "G.2X",
                                             "NumberOfWorkers": 3, "GlueVersion": "5.0"})
    job = glue.get_job(JobName=name)["Job"]
    assert (job["WorkerType"], job["NumberOfWorkers"], job["MaxCapacity"], job["GlueVersion"]) == (
        "G.2X", 3, 6.0, "5.0")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.start_job_run(JobName=name, WorkerType="Z.2X", NumberOfWorkers=2)
    assert "glueray" in excinfo.value.response["Error"]["Message"]
