"""Statement parsing and error positions, without a server."""

from __future__ import annotations

import duckdb
import pytest

from sagelab.athena.sql_errors import athena_message
from sagelab.athena.statements import StatementError, parse_statement, query_text


def test_ctas_header_is_parsed_and_blanked_keeping_offsets():
    text = ("CREATE TABLE IF NOT EXISTS db.t2 WITH (format = 'PARQUET', partitioned_by = ARRAY['y', 'm'],\n"
            "  external_location = 's3://b/t2/') AS\nSELECT x, y, m FROM t -- done\nWITH NO DATA;")
    statement = parse_statement(text)
    assert statement.kind == "ctas" and statement.target == ("db", "t2") and statement.if_exists
    assert statement.properties == {"format": "PARQUET", "partitioned_by": ["y", "m"],
                                    "external_location": "s3://b/t2/"}
    assert not statement.with_data
    body = query_text(text, statement)
    assert body.strip().startswith("SELECT x, y, m FROM t") and "NO DATA" not in body
    assert body.index("SELECT") == text.index("SELECT")


def test_statement_kinds():
    kinds = {"WITH a AS (SELECT 1) SELECT * FROM a": ("query", "DML"), "(SELECT 1)": ("query", "DML"),
             "INSERT INTO t (a, b) SELECT 1, 2": ("insert", "DML"), "SHOW TABLES IN db 'x*'": ("show_tables", "UTILITY"),
             "DESCRIBE awsdatacatalog.db.t": ("describe", "UTILITY"), "DROP TABLE IF EXISTS t": ("drop_table", "DDL"),
             "CREATE DATABASE IF NOT EXISTS d": ("create_database", "DDL"), "MSCK REPAIR TABLE t": ("repair_table", "DDL")}
    for text, (kind, statement_type) in kinds.items():
        statement = parse_statement(text)
        assert (statement.kind, statement.statement_type) == (kind, statement_type), text
    assert parse_statement("INSERT INTO t (a, b) SELECT 1, 2").columns == ["a", "b"]
    with pytest.raises(StatementError, match="CREATE TABLE ... AS SELECT only"):
        parse_statement("CREATE TABLE x")
    with pytest.raises(StatementError, match=r"line 2:1: mismatched input 'UPDATE'"):
        parse_statement("\nUPDATE t SET a = 1")


def test_create_external_table_is_parsed():
    statement = parse_statement("""CREATE EXTERNAL TABLE IF NOT EXISTS logs (
          ts timestamp COMMENT 'when', tags array<struct<k:string,v:int>>, price decimal(10, 2))
        PARTITIONED BY (day string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY '|' ESCAPED BY '\\'
        STORED AS TEXTFILE
        LOCATION 's3://b/logs/'
        TBLPROPERTIES ('skip.header.line.count' = '1')""")
    assert statement.kind == "create_table" and statement.if_exists
    props = statement.properties
    assert props["columns"] == [{"Name": "ts", "Type": "timestamp", "Comment": "when"},
                                {"Name": "tags", "Type": "array<struct<k:string,v:int>>"},
                                {"Name": "price", "Type": "decimal(10,2)"}]
    assert props["partition_keys"] == [{"Name": "day", "Type": "string"}]
    assert (props["delimiter"], props["stored_as"], props["location"]) == ("|", "textfile", "s3://b/logs/")
    assert props["table_properties"] == {"skip.header.line.count": "1"}


def test_error_positions_follow_duckdbs_caret_on_long_lines():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT 1 AS a")
    query = "SELECT " + "a, " * 27 + "bogus, " + "a, " * 20 + "a FROM t"
    with pytest.raises(duckdb.Error) as excinfo:
        connection.execute(query)
    reason, category = athena_message(query, excinfo.value, "db")
    assert reason.startswith(f"COLUMN_NOT_FOUND: line 1:{query.index('bogus') + 1}: Column 'bogus'")
    assert category == 2
