"""Helpers for catalog, crawler, Athena and Glue job tests: data in the lake and waits on async work."""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pyarrow.parquet as pq

ROLE = "arn:aws:iam::000000000000:role/GlueRole"
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


def put_parquet(s3, bucket: str, key: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def wait_crawler(glue, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY" and "LastCrawl" in crawler:
            return crawler
        time.sleep(0.1)
    raise TimeoutError(name)


def crawl(glue, name: str) -> dict:
    glue.start_crawler(Name=name)
    return wait_crawler(glue, name)


def wait_query(athena, query_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in FINISHED:
            return execution
        time.sleep(0.05)
    raise TimeoutError(query_id)


def start_query(athena, sql: str, database: str, output: str | None = None, **kwargs) -> str:
    params = {"QueryString": sql, "QueryExecutionContext": {"Database": database}, **kwargs}
    if output:
        params["ResultConfiguration"] = {"OutputLocation": output}
    return athena.start_query_execution(**params)["QueryExecutionId"]


def run_query(athena, sql: str, database: str, output: str | None = None, **kwargs) -> dict:
    return wait_query(athena, start_query(athena, sql, database, output, **kwargs))


def rows_of(athena, query_id: str) -> list[list[str | None]]:
    """Every row of a query's results (the header row included, as Athena returns it)."""
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        rows += [[d.get("VarCharValue") for d in row["Data"]] for row in page["ResultSet"]["Rows"]]
    return rows


def select(athena, sql: str, database: str, output: str) -> list[list[str | None]]:
    execution = run_query(athena, sql, database, output)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return rows_of(athena, execution["QueryExecutionId"])
