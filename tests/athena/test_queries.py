"""Athena through a real boto3 client: SQL over catalog tables (CSV, JSON, partitioned Parquet) on DuckDB."""

from __future__ import annotations

import concurrent.futures
import json
import time

import botocore.exceptions
import pyarrow as pa
import pytest
from conftest import unique
from lake_helpers import put_parquet, rows_of, run_query, select, start_query, wait_query

from sagelab.catalog.formats import storage_descriptor


@pytest.fixture(scope="module")
def lake(glue, s3):
    """A database with people (CSV), visits (JSON lines) and sales (Parquet, partitioned by year)."""
    bucket = unique("athena")
    s3.create_bucket(Bucket=bucket)
    database = unique("shop").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    s3.put_object(Bucket=bucket, Key="people/p.csv", Body=b"id,name,city\n1,ann,paris\n2,bob,rome\n3,cy,paris\n"
                  b"4,dee,\nx,bad,rome\n")
    people_sd = storage_descriptor("csv", f"s3://{bucket}/people/", [
        {"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}, {"Name": "city", "Type": "string"}])
    glue.create_table(DatabaseName=database, TableInput={"Name": "people", "StorageDescriptor": people_sd,
                                                         "Parameters": {"skip.header.line.count": "1"}})
    s3.put_object(Bucket=bucket, Key="visits/v.json", Body=b"\n".join(
        json.dumps({"person": i % 4 + 1, "page": f"p{i % 3}", "ms": i * 10}).encode() for i in range(20)))
    visits_sd = storage_descriptor("json", f"s3://{bucket}/visits/", [
        {"Name": "person", "Type": "bigint"}, {"Name": "page", "Type": "string"}, {"Name": "ms", "Type": "int"}])
    glue.create_table(DatabaseName=database, TableInput={"Name": "visits", "StorageDescriptor": visits_sd})
    sales_sd = storage_descriptor("parquet", f"s3://{bucket}/sales/", [
        {"Name": "person", "Type": "bigint"}, {"Name": "amount", "Type": "double"}])
    glue.create_table(DatabaseName=database, TableInput={"Name": "sales", "StorageDescriptor": sales_sd,
                                                         "PartitionKeys": [{"Name": "year", "Type": "int"}]})
    partitions = []
    for year in (2022, 2023, 2024):
        people = list(range(1, 5))
        put_parquet(s3, bucket, f"sales/year={year}/part-0.parquet",
                    pa.table({"person": people, "amount": [float(year - 2000 + p) for p in people]}))
        partitions.append({"Values": [str(year)], "StorageDescriptor": {**sales_sd,
                                                                        "Location": f"s3://{bucket}/sales/year={year}/"}})
    glue.batch_create_partition(DatabaseName=database, TableName="sales", PartitionInputList=partitions)
    return {"bucket": bucket, "database": database, "output": f"s3://{bucket}/results/"}


def q(athena, lake, sql: str) -> list[list[str | None]]:
    return select(athena, sql, lake["database"], lake["output"])


def test_select_csv_with_header_and_bad_values(athena, lake):
    rows = q(athena, lake, "SELECT id, name, city FROM people ORDER BY name")
    assert rows[0] == ["id", "name", "city"]
    # A malformed number reads as NULL; an empty field as NULL too.
    assert rows[1:] == [["1", "ann", "paris"], [None, "bad", "rome"], ["2", "bob", "rome"], ["3", "cy", "paris"],
                        ["4", "dee", None]]


def test_join_and_aggregate_over_json_and_parquet(athena, lake):
    rows = q(athena, lake, """
        SELECT p.name, count(*) AS visits, sum(v.ms) AS total_ms
        FROM visits v JOIN people p ON p.id = v.person
        GROUP BY p.name ORDER BY p.name""")
    assert rows == [["name", "visits", "total_ms"], ["ann", "5", "400"], ["bob", "5", "450"], ["cy", "5", "500"],
                    ["dee", "5", "550"]]
    rows = q(athena, lake, "SELECT year, round(sum(amount), 1) FROM sales GROUP BY year ORDER BY year")
    assert rows[1:] == [["2022", "98.0"], ["2023", "102.0"], ["2024", "106.0"]]


def test_partition_filter_prunes_files(athena, lake):
    everything = run_query(athena, "SELECT sum(amount) FROM sales", lake["database"], lake["output"])
    one_year = run_query(athena, "SELECT sum(amount) FROM sales WHERE year = 2024", lake["database"], lake["output"])
    assert rows_of(athena, one_year["QueryExecutionId"])[1] == ["106.0"]
    assert 0 < one_year["Statistics"]["DataScannedInBytes"] < everything["Statistics"]["DataScannedInBytes"]


def test_result_files_and_column_info(athena, s3, lake):
    execution = run_query(athena, "SELECT 1 AS n, 'x' AS s, 2.5e0 AS d, true AS b, DATE '2024-01-02' AS day, "
                          "TIMESTAMP '2024-01-02 03:04:05' AS ts, CAST(NULL AS VARCHAR) AS missing",
                          lake["database"], lake["output"])
    query_id = execution["QueryExecutionId"]
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{lake['output']}{query_id}.csv"
    assert execution["StatementType"] == "DML" and execution["WorkGroup"] == "primary"
    assert execution["QueryExecutionContext"]["Database"] == lake["database"]
    stats = execution["Statistics"]
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"] >= 0
    body = s3.get_object(Bucket=lake["bucket"], Key=f"results/{query_id}.csv")["Body"].read().decode()
    assert body.splitlines() == ['"n","s","d","b","day","ts","missing"',
                                 '1,"x",2.5,"true","2024-01-02","2024-01-02 03:04:05.000",'.replace(
                                     "1,", '"1",').replace(",2.5,", ',"2.5",')]
    s3.head_object(Bucket=lake["bucket"], Key=f"results/{query_id}.csv.metadata")
    result = athena.get_query_results(QueryExecutionId=query_id)
    types = [(c["Name"], c["Type"]) for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == [("n", "integer"), ("s", "varchar"), ("d", "double"), ("b", "boolean"), ("day", "date"),
                     ("ts", "timestamp"), ("missing", "varchar")]
    assert result["ResultSet"]["Rows"][1]["Data"][-1] == {}


def test_ctas_and_insert_round_trip(athena, glue, s3, lake):
    location = f"s3://{lake['bucket']}/ctas/yearly/"
    execution = run_query(athena, f"""CREATE TABLE yearly WITH (format = 'PARQUET', external_location = '{location}',
        partitioned_by = ARRAY['year']) AS SELECT person, amount * 2 AS doubled, year FROM sales WHERE year >= 2023""",
                          lake["database"], lake["output"])
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["StatementType"] == "DDL"
    assert athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])["UpdateCount"] == 8
    manifest = execution["Statistics"]["DataManifestLocation"]
    assert manifest == f"{lake['output']}{execution['QueryExecutionId']}-manifest.csv"
    listed = s3.get_object(Bucket=lake["bucket"], Key=manifest.split("/", 3)[3])["Body"].read().decode().split()
    assert len(listed) == 2 and all(uri.startswith(location) for uri in listed)
    table = glue.get_table(DatabaseName=lake["database"], Name="yearly")["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("person", "bigint"), ("doubled", "double")]
    assert table["PartitionKeys"] == [{"Name": "year", "Type": "int"}]
    assert table["StorageDescriptor"]["Location"] == location
    partitions = glue.get_partitions(DatabaseName=lake["database"], TableName="yearly")["Partitions"]
    assert sorted(p["Values"] for p in partitions) == [["2023"], ["2024"]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake["bucket"], Prefix="ctas/yearly/")["Contents"]]
    assert all(k.startswith(("ctas/yearly/year=2023/", "ctas/yearly/year=2024/")) for k in keys)

    execution = run_query(athena, "INSERT INTO yearly SELECT 9, 1.5, 2030", lake["database"], lake["output"])
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["StatementType"] == "DML"
    rows = q(athena, lake, "SELECT year, count(*), sum(doubled) FROM yearly GROUP BY year ORDER BY year")
    assert rows[1:] == [["2023", "4", "204.0"], ["2024", "4", "212.0"], ["2030", "1", "1.5"]]
    again = run_query(athena, f"CREATE TABLE yearly2 WITH (external_location = '{location}') AS SELECT 1 AS x",
                      lake["database"], lake["output"])
    assert again["Status"]["State"] == "FAILED"
    assert again["Status"]["StateChangeReason"].startswith("HIVE_PATH_ALREADY_EXISTS")


def test_sql_errors_name_line_and_column(athena, lake):
    cases = {
        "SELECT nope FROM people": "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
        "SELECT name\nFROM people\nWHERE  bogus > 1": "COLUMN_NOT_FOUND: line 3:8: Column 'bogus' cannot be resolved",
        "SELECT * FROM missing_table": f"TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.{lake['database']}"
                                       ".missing_table' does not exist",
        "SELECT name,, city FROM people": "SYNTAX_ERROR: line 1:13: mismatched input ','",
        "SELEC 1": "SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'",
        "SELECT 1; SELECT 2": "SYNTAX_ERROR: line 1:9: Only one sql statement is allowed",
        "SELECT no_such_fn(id) FROM people": "FUNCTION_NOT_FOUND: line 1:8: Function 'no_such_fn' not registered",
        "SELECT * FROM read_csv('/etc/passwd')": "HIVE_CANNOT_OPEN_SPLIT",
    }
    ids = {sql: start_query(athena, sql, lake["database"], lake["output"]) for sql in cases}
    for sql, expected in cases.items():
        execution = wait_query(athena, ids[sql])
        assert execution["Status"]["State"] == "FAILED", sql
        assert execution["Status"]["StateChangeReason"].startswith(expected), (sql, execution["Status"])
        assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            athena.get_query_results(QueryExecutionId=ids[sql])
        assert excinfo.value.response["Error"]["Code"] == "InvalidRequestException"


@pytest.mark.slow
def test_pagination_of_large_results(athena, lake):
    execution = run_query(athena, "SELECT i, 'row' || i AS label FROM range(2500) t(i) ORDER BY i",
                          lake["database"], lake["output"])
    query_id = execution["QueryExecutionId"]
    first = athena.get_query_results(QueryExecutionId=query_id, MaxResults=1000)
    assert len(first["ResultSet"]["Rows"]) == 1000 and first["NextToken"]
    assert [d["VarCharValue"] for d in first["ResultSet"]["Rows"][0]["Data"]] == ["i", "label"]
    rows = rows_of(athena, query_id)
    assert len(rows) == 2501
    assert rows[1] == ["0", "row0"] and rows[-1] == ["2499", "row2499"]
    with pytest.raises(botocore.exceptions.ClientError):
        athena.get_query_results(QueryExecutionId=query_id, MaxResults=1001)


@pytest.mark.slow
def test_concurrent_queries(athena, lake):
    def one(year: int) -> list[list[str | None]]:
        return q(athena, lake, f"SELECT count(*), sum(amount) FROM sales WHERE year = {year}")

    years = [2022, 2023, 2024] * 3
    with concurrent.futures.ThreadPoolExecutor(len(years)) as pool:
        results = list(pool.map(one, years))
    for year, rows in zip(years, results, strict=True):
        assert rows[1] == ["4", str(float(4 * (year - 2000) + 10))]


def test_catalog_statements(athena, lake):
    assert ["people"] in q(athena, lake, "SHOW TABLES")
    assert q(athena, lake, "DESCRIBE sales") == [["person", "bigint", ""], ["amount", "double", ""],
                                                 ["year", "int", ""]]
    assert q(athena, lake, "SHOW PARTITIONS sales") == [["year=2022"], ["year=2023"], ["year=2024"]]
    execution = run_query(athena, "SHOW TABLES", lake["database"], lake["output"])
    assert execution["StatementType"] == "UTILITY"


def test_work_groups_and_query_listing(athena, lake):
    names = [w["Name"] for w in athena.list_work_groups()["WorkGroups"]]
    assert "primary" in names
    group = unique("wg")
    athena.create_work_group(Name=group, Configuration={"ResultConfiguration": {
        "OutputLocation": f"s3://{lake['bucket']}/wg-results/"}}, Description="team")
    assert athena.get_work_group(WorkGroup=group)["WorkGroup"]["Description"] == "team"
    execution = run_query(athena, "SELECT 42", lake["database"], WorkGroup=group)
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{lake['bucket']}/wg-results/")
    listed = athena.list_query_executions(WorkGroup=group)["QueryExecutionIds"]
    assert listed == [execution["QueryExecutionId"]]
    batch = athena.batch_get_query_execution(QueryExecutionIds=[execution["QueryExecutionId"], "nope"])
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == [execution["QueryExecutionId"]]
    assert batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "nope"
    athena.stop_query_execution(QueryExecutionId=execution["QueryExecutionId"])  # finished: a no-op
    assert athena.get_query_execution(QueryExecutionId=execution["QueryExecutionId"])["QueryExecution"][
        "Status"]["State"] == "SUCCEEDED"
    athena.delete_work_group(WorkGroup=group)
    errors = [
        lambda: athena.get_work_group(WorkGroup=group),
        lambda: athena.start_query_execution(QueryString="SELECT 1"),  # primary has no output location
        lambda: athena.get_query_execution(QueryExecutionId="missing"),
        lambda: athena.delete_work_group(WorkGroup="primary"),
    ]
    for call in errors:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "InvalidRequestException"


@pytest.mark.slow
def test_stop_a_running_query(athena, lake):
    query_id = start_query(athena, "SELECT count(*) FROM range(100000000000) a", lake["database"], lake["output"])
    deadline = time.monotonic() + 60
    while athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "QUEUED":
        assert time.monotonic() < deadline
    athena.stop_query_execution(QueryExecutionId=query_id)
    execution = wait_query(athena, query_id)
    assert execution["Status"]["State"] == "CANCELLED"
    # The engine stops too: the next query runs at once on the freed pool.
    assert q(athena, lake, "SELECT 7")[1] == ["7"]


def test_create_external_table_and_repair(athena, glue, s3, lake):
    bucket = lake["bucket"]
    for day in ("2024-01-01", "2024-01-02"):
        s3.put_object(Bucket=bucket, Key=f"clicks/day={day}/c.tsv", Body=f"user\tn\nann\t1\nbob\t{day[-1]}\n".encode())
    execution = run_query(athena, f"""CREATE EXTERNAL TABLE clicks (`user` string, n int)
        PARTITIONED BY (day string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t'
        LOCATION 's3://{bucket}/clicks/' TBLPROPERTIES ('skip.header.line.count'='1')""",
                          lake["database"], lake["output"])
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    table = glue.get_table(DatabaseName=lake["database"], Name="clicks")["Table"]
    assert table["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": "\t"}
    assert q(athena, lake, "SELECT count(*) FROM clicks")[1] == ["0"]  # no partitions registered yet
    repaired = q(athena, lake, "MSCK REPAIR TABLE clicks")
    assert len(repaired) == 2 and repaired[0][0].startswith("Repair: Added partition to metastore clicks:")
    assert q(athena, lake, "SELECT day, sum(n) FROM clicks GROUP BY day ORDER BY day")[1:] == [
        ["2024-01-01", "2"], ["2024-01-02", "3"]]


def test_catalog_column_missing_from_every_file_reads_as_null(athena, glue, lake):
    sd = storage_descriptor("parquet", f"s3://{lake['bucket']}/sales/year=2024/", [
        {"Name": "person", "Type": "bigint"}, {"Name": "discount", "Type": "double"}])
    glue.create_table(DatabaseName=lake["database"], TableInput={"Name": "sales_2024", "StorageDescriptor": sd})
    assert q(athena, lake, "SELECT count(*), count(discount), max(person) FROM sales_2024")[1] == ["4", "0", "4"]
