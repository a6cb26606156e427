"""DMS's pure parts, without a server: object layout and bodies, table mappings, decoded change text."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import io

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from sagelab.dms import cdc, mappings
from sagelab.dms.errors import InvalidParameterValue
from sagelab.dms.target import S3Target

COLUMNS = [("id", sa.Integer()), ("price", sa.Numeric(8, 2)), ("at", sa.DateTime()),
           ("stamp", sa.DateTime(timezone=True)), ("ok", sa.Boolean()), ("blob", sa.LargeBinary()),
           ("name", sa.Text())]


def target(**settings) -> S3Target:
    return S3Target.from_settings({"BucketName": "lake", "BucketFolder": "/raw/", **settings})


def test_keys_follow_dms_layout():
    assert target().load_key("public", "items") == "raw/public/items/LOAD00000001.csv"
    assert target(CompressionType="gzip").load_key("s", "t", 12) == "raw/s/t/LOAD00000012.csv.gz"
    assert target(DataFormat="parquet", CompressionType="gzip").load_key("s", "t") == "raw/s/t/LOAD00000001.parquet"
    key = target().cdc_key("s", "t", dt.datetime(2024, 5, 6, 7, 8, 9, 123000, dt.UTC).timestamp())
    assert key.startswith("raw/s/t/20240506-070809123") and key.endswith(".csv")
    assert S3Target.from_settings({"BucketName": "b"}).load_key("s", "t") == "s/t/LOAD00000001.csv"
    with pytest.raises(InvalidParameterValue, match="BucketName"):
        S3Target.from_settings({})


def test_csv_bodies_header_op_timestamp_and_gzip():
    rows = [(1, decimal.Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5), None, True, b"\x01\xff", "a,b")]
    plain = target().full_load_body(COLUMNS, rows, 0).decode()
    assert plain == '1,1.50,2024-01-02 03:04:05.000000,,true,01FF,"a,b"\n'
    fancy = target(AddColumnName=True, IncludeOpForFullLoad=True, TimestampColumnName="ts", CsvNullValue="NULL",
                   CompressionType="gzip").full_load_body(COLUMNS, rows, 0)
    lines = gzip.decompress(fancy).decode().splitlines()
    assert lines[0] == "Op,ts,id,price,at,stamp,ok,blob,name"
    assert lines[1].startswith("I,1970-01-01 00:00:00.000000,1,1.50,") and ",NULL," in lines[1]
    changes = target().cdc_body([("id", sa.Integer()), ("name", sa.Text())], [("D", 0, ["7", None])])
    assert changes == b"D,7,\n"


def test_parquet_bodies_keep_types_for_full_load_and_changes():
    rows = [(1, decimal.Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5), None, True, b"\x01", "x")]
    table = pq.read_table(io.BytesIO(target(DataFormat="parquet").full_load_body(COLUMNS, rows, 0)))
    assert table.to_pylist()[0]["price"] == decimal.Decimal("1.50") and table.to_pylist()[0]["ok"] is True
    text = [("I", 0, ["2", "3.25", "2024-01-02 03:04:05.5", "2024-01-02 03:04:05.5+00", "t", "\\x0aff", "y"]),
            ("D", 0, ["2", None, None, None, None, None, None])]
    table = pq.read_table(io.BytesIO(target(DataFormat="parquet", TimestampColumnName="ts").cdc_body(COLUMNS, text)))
    assert table.column_names == ["Op", "ts", *[name for name, _ in COLUMNS]]
    first, second = table.to_pylist()
    assert first["Op"] == "I" and first["id"] == 2 and first["price"] == decimal.Decimal("3.25")
    assert first["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000) and first["ok"] is True
    assert first["stamp"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000, dt.UTC) and first["blob"] == b"\n\xff"
    assert second["Op"] == "D" and second["price"] is None


def test_table_mappings_select_and_transform():
    rules = mappings.parse("""{"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
         "object-locator": {"schema-name": "sa%", "table-name": "%"}},
        {"rule-type": "selection", "rule-id": "2", "rule-name": "2", "rule-action": "exclude",
         "object-locator": {"schema-name": "sales", "table-name": "tmp_%"}},
        {"rule-type": "transformation", "rule-id": "3", "rule-name": "3", "rule-target": "schema",
         "rule-action": "convert-uppercase", "object-locator": {"schema-name": "%"}},
        {"rule-type": "transformation", "rule-id": "4", "rule-name": "4", "rule-target": "table",
         "rule-action": "add-prefix", "value": "dms_", "object-locator": {"schema-name": "sales", "table-name": "%"}},
        {"rule-type": "transformation", "rule-id": "5", "rule-name": "5", "rule-target": "column",
         "rule-action": "convert-lowercase",
         "object-locator": {"schema-name": "%", "table-name": "%", "column-name": "%"}},
        {"rule-type": "transformation", "rule-id": "6", "rule-name": "6", "rule-target": "column",
         "rule-action": "remove-column",
         "object-locator": {"schema-name": "sales", "table-name": "orders", "column-name": "Secret%"}}]}""")
    assert rules.selects("sales", "orders") and rules.selects("saas", "x")
    assert not rules.selects("sales", "tmp_1") and not rules.selects("public", "orders")
    mapped = rules.target("sales", "orders", ["Id", "SecretNote", "Total"])
    assert (mapped.schema, mapped.table, mapped.columns) == ("SALES", "dms_orders", {"Id": "id", "Total": "total"})
    with pytest.raises(InvalidParameterValue, match="at least one selection rule"):
        mappings.parse('{"rules": [{"rule-type": "selection", "rule-action": "exclude", '
                       '"object-locator": {"schema-name": "%"}}]}')
    with pytest.raises(InvalidParameterValue, match='"value"'):
        mappings.parse('{"rules": [{"rule-type": "transformation", "rule-target": "table", '
                       '"rule-action": "rename", "object-locator": {"schema-name": "%"}}]}')


def test_decoded_change_values():
    text = ("id[integer]:1 \"Odd Name\"[character varying]:'it''s' at[timestamp without time zone]:"
            "'2024-01-02 03:04:05' gone[text]:null")
    assert cdc._values(text) == {"id": "1", "Odd Name": "it's", "at": "2024-01-02 03:04:05", "gone": None}
    assert cdc._values("old-key: id[integer]:1 new-tuple: id[integer]:2 v[text]:'x'") == {"id": "2", "v": "x"}
