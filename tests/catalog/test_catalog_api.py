"""The Glue Data Catalog through a real boto3 Glue client: databases, tables, partitions, expressions."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import unique

from sagelab.catalog.expressions import parse_partition_filter
from sagelab.catalog.types import duckdb_type, parse_hive_type, widen
from sagelab.errors import InvalidInput

CSV_SD = {
    "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}],
    "Location": "s3://lake/people/",
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                  "Parameters": {"field.delim": ","}},
}


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def database(glue) -> str:
    name = unique("db").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": name, "Description": "test"})
    return name


def test_database_life_cycle(glue):
    name = unique("Sales").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": name, "Description": "first", "Parameters": {"team": "a"}})
    got = glue.get_database(Name=name)["Database"]
    assert got["Name"] == name.lower() and got["Description"] == "first" and got["Parameters"] == {"team": "a"}
    assert got["CatalogId"] and got["CreateTime"]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.create_database(DatabaseInput={"Name": name})
    assert error_code(excinfo) == "AlreadyExistsException"
    glue.update_database(Name=name, DatabaseInput={"Name": name, "Description": "second"})
    assert glue.get_database(Name=name)["Database"]["Description"] == "second"
    names = [d["Name"] for p in glue.get_paginator("get_databases").paginate() for d in p["DatabaseList"]]
    assert name.lower() in names
    glue.create_table(DatabaseName=name, TableInput={"Name": "t", "StorageDescriptor": CSV_SD})
    glue.delete_database(Name=name)
    for call in (lambda: glue.get_database(Name=name), lambda: glue.get_table(DatabaseName=name, Name="t")):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "EntityNotFoundException"


def test_tables(glue, database):
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "People", "StorageDescriptor": CSV_SD, "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"}})
    table = glue.get_table(DatabaseName=database, Name="people")["Table"]
    assert table["Name"] == "people" and table["DatabaseName"] == database
    assert table["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": ","}
    assert table["VersionId"] == "0" and table["PartitionKeys"] == []
    glue.create_table(DatabaseName=database, TableInput={"Name": "orders", "StorageDescriptor": CSV_SD})
    glue.create_table(DatabaseName=database, TableInput={"Name": "order_items", "StorageDescriptor": CSV_SD})
    names = [t["Name"] for t in glue.get_tables(DatabaseName=database, Expression="order*")["TableList"]]
    assert names == ["order_items", "orders"]
    page = glue.get_tables(DatabaseName=database, MaxResults=2)
    assert len(page["TableList"]) == 2 and page["NextToken"]
    assert len(glue.get_tables(DatabaseName=database, NextToken=page["NextToken"])["TableList"]) == 1
    updated_sd = {**CSV_SD, "Columns": CSV_SD["Columns"] + [{"Name": "age", "Type": "int"}]}
    glue.update_table(DatabaseName=database, TableInput={"Name": "people", "StorageDescriptor": updated_sd})
    table = glue.get_table(DatabaseName=database, Name="people")["Table"]
    assert table["VersionId"] == "1" and [c["Name"] for c in table["StorageDescriptor"]["Columns"]][-1] == "age"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.create_table(DatabaseName=database, TableInput={"Name": "people", "StorageDescriptor": CSV_SD})
    assert error_code(excinfo) == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.create_table(DatabaseName=database, TableInput={"Name": "bad", "StorageDescriptor": {
            **CSV_SD, "Columns": [{"Name": "x", "Type": "array<int"}]}})
    assert error_code(excinfo) == "InvalidInputException"
    assert "'x'" in excinfo.value.response["Error"]["Message"]
    glue.delete_table(DatabaseName=database, Name="people")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.get_table(DatabaseName=database, Name="people")
    assert error_code(excinfo) == "EntityNotFoundException"


def test_partitions_and_expressions(glue, database):
    keys = [{"Name": "year", "Type": "int"}, {"Name": "region", "Type": "string"}]
    glue.create_table(DatabaseName=database, TableInput={"Name": "sales", "StorageDescriptor": CSV_SD,
                                                         "PartitionKeys": keys})
    values = [[str(y), r] for y in (2022, 2023, 2024) for r in ("eu", "us")]
    inputs = [{"Values": v, "StorageDescriptor": {**CSV_SD, "Location": f"s3://lake/sales/year={v[0]}/region={v[1]}/"}}
              for v in values]
    assert glue.batch_create_partition(DatabaseName=database, TableName="sales", PartitionInputList=inputs)[
        "Errors"] == []
    again = glue.batch_create_partition(DatabaseName=database, TableName="sales",
                                        PartitionInputList=inputs[:1] + [{"Values": ["1"]}])["Errors"]
    assert [e["ErrorDetail"]["ErrorCode"] for e in again] == ["AlreadyExistsException", "InvalidInputException"]

    def found(expression: str) -> list[list[str]]:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName="sales",
                                                              Expression=expression)
        return sorted(p["Values"] for page in pages for p in page["Partitions"])

    assert found("year = 2024 AND region = 'eu'") == [["2024", "eu"]]
    assert found("year > 2022 and (region = 'us' OR region = 'eu')") == sorted(v for v in values if v[0] != "2022")
    assert found("year BETWEEN 2022 AND 2023 AND NOT region IN ('us')") == [["2022", "eu"], ["2023", "eu"]]
    assert found("region LIKE 'e%'") == [v for v in sorted(values) if v[1] == "eu"]
    assert len(found("")) == 6
    page = glue.get_partitions(DatabaseName=database, TableName="sales", MaxResults=4)
    assert len(page["Partitions"]) == 4 and page["NextToken"]
    got = glue.get_partition(DatabaseName=database, TableName="sales", PartitionValues=["2023", "us"])["Partition"]
    assert got["StorageDescriptor"]["Location"] == "s3://lake/sales/year=2023/region=us/"
    glue.delete_partition(DatabaseName=database, TableName="sales", PartitionValues=["2023", "us"])
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.get_partition(DatabaseName=database, TableName="sales", PartitionValues=["2023", "us"])
    assert error_code(excinfo) == "EntityNotFoundException"
    errors = glue.batch_delete_partition(DatabaseName=database, TableName="sales", PartitionsToDelete=[
        {"Values": ["2022", "eu"]}, {"Values": ["1999", "eu"]}])["Errors"]
    assert [e["PartitionValues"] for e in errors] == [["1999", "eu"]]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.get_partitions(DatabaseName=database, TableName="sales", Expression="month = '01'")
    assert error_code(excinfo) == "InvalidInputException"
    assert "'month' is not a partition key" in excinfo.value.response["Error"]["Message"]


def test_expression_parser_reports_the_position():
    with pytest.raises(InvalidInput, match="expected a partition key, the expression ends at character 12"):
        parse_partition_filter("year = 1 OR", {"year": "int"})
    predicate = parse_partition_filter("y >= '2024' and m != '01'", {"y": "string", "m": "string"})
    assert predicate({"y": "2024", "m": "02"}) and not predicate({"y": "2024", "m": "01"})


def test_hive_types():
    assert duckdb_type("array<struct<a:int,b:map<string,double>>>") == 'STRUCT("a" INTEGER, "b" MAP(VARCHAR, DOUBLE))[]'
    assert duckdb_type("decimal(10,2)") == "DECIMAL(10, 2)"
    assert parse_hive_type("varchar(20)").params == (20,)
    assert widen("int", "bigint") == "bigint" and widen("bigint", "double") == "double"
    assert widen("bigint", "string") == "string"
    with pytest.raises(InvalidInput):
        parse_hive_type("struct<a int>")
