"""Crawlers through a real boto3 Glue client: schema and partition inference, re-crawls, states, errors."""

from __future__ import annotations

import gzip

import botocore.exceptions
import pyarrow as pa
import pytest
from conftest import unique
from lake_helpers import ROLE, crawl, put_parquet, select


def columns(table: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


@pytest.mark.slow
def test_crawl_csv_json_and_partitioned_parquet(glue, athena, s3, bucket):
    s3.put_object(Bucket=bucket, Key="raw/people/part1.csv", Body=b"id,name,score,joined\n1,ann,1.5,2024-01-02\n"
                  b"2,bob,2.5,2024-02-03\n")
    s3.put_object(Bucket=bucket, Key="raw/people/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key="raw/quoted/q.csv.gz", Body=gzip.compress(
        b'id|label\n1|"a|b"\n2|"c"\n'))
    s3.put_object(Bucket=bucket, Key="raw/events/day1.json", Body=b'{"id": 1, "kind": "click", "tags": ["a"], '
                  b'"meta": {"ms": 5}}\n{"id": 2, "kind": "view", "tags": [], "meta": {"ms": 7}}\n')
    for year, month in ((2023, "12"), (2024, "01")):
        put_parquet(s3, bucket, f"raw/sales/year={year}/month={month}/part-0.parquet",
                    pa.table({"id": [1, 2], "amount": [1.5, 2.5]}))
    database = unique("crawled").replace("-", "_")
    name = unique("crawler")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database, TablePrefix="raw_",
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/raw/", "Exclusions": ["quoted/**"]}]})
    assert glue.get_crawler(Name=name)["Crawler"]["State"] == "READY"
    crawler = crawl(glue, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert sorted(tables) == ["raw_events", "raw_people", "raw_sales"]

    people = tables["raw_people"]
    assert columns(people) == [("id", "bigint"), ("name", "string"), ("score", "double"), ("joined", "date")]
    assert people["Parameters"]["classification"] == "csv"
    assert people["Parameters"]["skip.header.line.count"] == "1"
    assert people["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("LazySimpleSerDe")
    assert people["StorageDescriptor"]["Location"] == f"s3://{bucket}/raw/people/"

    events = tables["raw_events"]
    assert events["Parameters"]["classification"] == "json"
    assert dict(columns(events)) == {"id": "bigint", "kind": "string", "tags": "array<string>",
                                     "meta": "struct<ms:bigint>"}

    sales = tables["raw_sales"]
    assert sales["Parameters"]["classification"] == "parquet"
    assert columns(sales) == [("id", "bigint"), ("amount", "double")]
    assert [k["Name"] for k in sales["PartitionKeys"]] == ["year", "month"]
    partitions = glue.get_partitions(DatabaseName=database, TableName="raw_sales")["Partitions"]
    assert sorted(p["Values"] for p in partitions) == [["2023", "12"], ["2024", "01"]]
    assert {p["StorageDescriptor"]["Location"] for p in partitions} == {
        f"s3://{bucket}/raw/sales/year=2023/month=12/", f"s3://{bucket}/raw/sales/year=2024/month=01/"}

    metrics = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert metrics["TablesCreated"] == 3 and metrics["LastRuntimeSeconds"] >= 0

    # New partitions arrive, one with an extra column; a quoted CSV folder is no longer excluded.
    put_parquet(s3, bucket, "raw/sales/year=2024/month=02/part-0.parquet",
                pa.table({"id": [3], "amount": [4.0], "channel": ["web"]}))
    glue.update_crawler(Name=name, Targets={"S3Targets": [{"Path": f"s3://{bucket}/raw/"}]})
    crawler = crawl(glue, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    sales = glue.get_table(DatabaseName=database, Name="raw_sales")["Table"]
    assert columns(sales) == [("id", "bigint"), ("amount", "double"), ("channel", "string")]
    assert sales["VersionId"] == "1"
    partitions = glue.get_partitions(DatabaseName=database, TableName="raw_sales")["Partitions"]
    assert sorted(p["Values"] for p in partitions) == [["2023", "12"], ["2024", "01"], ["2024", "02"]]
    quoted = glue.get_table(DatabaseName=database, Name="raw_quoted")["Table"]
    assert quoted["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("OpenCSVSerde")
    assert quoted["StorageDescriptor"]["SerdeInfo"]["Parameters"]["separatorChar"] == "|"
    assert quoted["Parameters"]["compressionType"] == "gzip"
    metrics = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert metrics["TablesCreated"] == 1 and metrics["TablesUpdated"] == 1

    # What the crawler wrote is what Athena reads: quoted gzip CSV, JSON structs, the new partition.
    output = f"s3://{bucket}/athena/"
    assert select(athena, "SELECT id, label FROM raw_quoted ORDER BY id", database, output)[1:] == [
        ["1", "a|b"], ["2", "c"]]
    assert select(athena, "SELECT kind, meta.ms FROM raw_events ORDER BY id", database, output)[1:] == [
        ["click", "5"], ["view", "7"]]
    assert select(athena, "SELECT year, month, count(*), max(channel) FROM raw_sales GROUP BY 1, 2 ORDER BY 1, 2",
                  database, output)[1:] == [["2023", "12", "2", None], ["2024", "01", "2", None],
                                            ["2024", "02", "1", "web"]]


def test_crawler_errors(glue, bucket):
    name = unique("crawler")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName="x", Targets={"S3Targets": [{"Path": f"s3://{bucket}/"}]})
    cases = [
        (lambda: glue.create_crawler(Name=name, Role=ROLE, Targets={"S3Targets": [{"Path": f"s3://{bucket}/"}]}),
         "AlreadyExistsException"),
        (lambda: glue.get_crawler(Name=unique("missing")), "EntityNotFoundException"),
        (lambda: glue.stop_crawler(Name=name), "CrawlerNotRunningException"),
        (lambda: glue.create_crawler(Name=unique("c"), Role=ROLE, Targets={"JdbcTargets": [
            {"ConnectionName": "db", "Path": "x/%"}]}), "InvalidInputException"),
        (lambda: glue.create_crawler(Name=unique("c"), Role=ROLE, Targets={"S3Targets": [{"Path": "lake/x"}]}),
         "InvalidInputException"),
    ]
    for call, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == code
    assert name in [c["Name"] for c in glue.get_crawlers()["Crawlers"]]
    glue.delete_crawler(Name=name)
    assert name not in [c["Name"] for c in glue.get_crawlers()["Crawlers"]]
