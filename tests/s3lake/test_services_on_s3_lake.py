"""A training job, an Athena query and a Glue crawler on a server whose lake is an external S3 store: each
reads its input from, and writes its output to, the external bucket."""

from __future__ import annotations

import io
import tarfile

import pyarrow as pa
import pytest
from conftest import unique
from helpers import job_request, upload_breast_cancer, wait_job
from lake_helpers import ROLE, crawl, put_parquet, select

from sagelab.catalog.formats import storage_descriptor

from .external import external_keys


@pytest.mark.slow
def test_xgboost_training_job_reads_and_writes_the_external_lake(sm, s3, bucket, external, lake, tmp_path):
    upload_breast_cancer(s3, bucket, tmp_path)
    name = unique("s3lake-xgb")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "5", "objective": "binary:logistic",
                                                                   "eval_metric": "auc"}))
    desc = wait_job(sm, name, timeout=240)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    artifact = desc["ModelArtifacts"]["S3ModelArtifacts"]
    key = artifact.removeprefix(f"s3://{bucket}/")
    model = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(model)) as tar:
        assert tar.getnames()  # a model archive, whatever the algorithm names its file
    assert f"{lake.prefix}/{bucket}/{key}/@meta.json" in external_keys(external, lake, bucket, key)


@pytest.fixture
def database(glue):
    name = unique("s3lake").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": name})
    return name


@pytest.mark.slow
def test_athena_query_over_csv_and_parquet(athena, glue, s3, bucket, database, external, lake):
    s3.put_object(Bucket=bucket, Key="people/p.csv", Body=b"id,name\n1,ann\n2,bob\n3,cy\n")
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "people", "Parameters": {"skip.header.line.count": "1"},
        "StorageDescriptor": storage_descriptor("csv", f"s3://{bucket}/people/", [
            {"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}])})
    put_parquet(s3, bucket, "sales/part-0.parquet", pa.table({"person": [1, 1, 2, 3], "amount": [1.5, 2.0, 4.0, 8.0]}))
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "sales", "StorageDescriptor": storage_descriptor("parquet", f"s3://{bucket}/sales/", [
            {"Name": "person", "Type": "bigint"}, {"Name": "amount", "Type": "double"}])})
    rows = select(athena, "SELECT p.name, sum(s.amount) AS total FROM sales s JOIN people p ON p.id = s.person "
                  "GROUP BY p.name ORDER BY p.name", database, f"s3://{bucket}/results/")
    assert rows == [["name", "total"], ["ann", "3.5"], ["bob", "4.0"], ["cy", "8.0"]]
    results = [k for k in external_keys(external, lake, bucket, "results") if k.endswith(".csv/@meta.json")]
    assert results  # the result file is an object of the external store


@pytest.mark.slow
def test_glue_crawler_catalogues_a_prefix(glue, athena, s3, bucket):
    s3.put_object(Bucket=bucket, Key="raw/people/part1.csv", Body=b"id,name,score\n1,ann,1.5\n2,bob,2.5\n")
    for year in (2023, 2024):
        put_parquet(s3, bucket, f"raw/sales/year={year}/part-0.parquet", pa.table({"id": [1, 2], "amount": [1.0, 2.0]}))
    database = unique("crawled").replace("-", "_")
    name = unique("crawler")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database,
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/raw/"}]})
    crawler = crawl(glue, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert sorted(tables) == ["people", "sales"]
    assert [(c["Name"], c["Type"]) for c in tables["people"]["StorageDescriptor"]["Columns"]] == [
        ("id", "bigint"), ("name", "string"), ("score", "double")]
    assert [k["Name"] for k in tables["sales"]["PartitionKeys"]] == ["year"]
    rows = select(athena, "SELECT year, sum(amount) FROM sales GROUP BY year ORDER BY year", database,
                  f"s3://{bucket}/results/")
    assert rows[1:] == [["2023", "3.0"], ["2024", "3.0"]]
