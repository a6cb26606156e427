"""The S3 target: rows written into the lake the way DMS lays them out.

Full load: `<BucketFolder>/<schema>/<table>/LOAD00000001.csv` (or `.parquet`), CSV without a header
unless AddColumnName. CDC: `<BucketFolder>/<schema>/<table>/<yyyymmdd-hhmmssfff>.csv` (or `.parquet`), each row led
by the `Op` column (I, U or D), as DMS writes them. TimestampColumnName adds a column (after Op) holding when
the row was loaded, or its commit time for a change. gzip compresses CSV objects (`.csv.gz`) and Parquet
pages.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import gzip
import io
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from sagelab.dms.errors import InvalidParameterValue

#: S3Settings sagelab honours, with DMS's defaults; the others are kept and echoed but change nothing.
S3_DEFAULTS: dict[str, Any] = {"BucketFolder": "", "DataFormat": "csv", "CompressionType": "none",
                               "CsvDelimiter": ",", "CsvRowDelimiter": "\n", "AddColumnName": False,
                               "IncludeOpForFullLoad": False, "TimestampColumnName": "", "CsvNullValue": "",
                               "CdcPath": ""}


@dataclasses.dataclass(frozen=True)
class S3Target:
    bucket: str
    folder: str
    data_format: str
    compression: str
    delimiter: str
    row_delimiter: str
    add_column_name: bool
    op_for_full_load: bool
    timestamp_column: str
    null_value: str

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> S3Target:
        values = {**S3_DEFAULTS, **settings}
        if not values.get("BucketName"):
            raise InvalidParameterValue("S3Settings.BucketName is required for an s3 target endpoint.")
        return cls(values["BucketName"], values["BucketFolder"].strip("/"), values["DataFormat"],
                   values["CompressionType"].lower(), values["CsvDelimiter"], values["CsvRowDelimiter"],
                   bool(values["AddColumnName"]), bool(values["IncludeOpForFullLoad"]),
                   values["TimestampColumnName"], values["CsvNullValue"])

    def table_prefix(self, schema: str, table: str) -> str:
        return "/".join(part for part in (self.folder, schema, table) if part) + "/"

    def load_key(self, schema: str, table: str, number: int = 1) -> str:
        extension = ".parquet" if self.data_format == "parquet" else ".csv" + self._gz
        return f"{self.table_prefix(schema, table)}LOAD{number:08d}{extension}"

    def cdc_key(self, schema: str, table: str, when: float) -> str:
        stamp = dt.datetime.fromtimestamp(when, dt.UTC)
        # DMS names change files by time; a suffix keeps two files written in one millisecond apart.
        name = f"{stamp:%Y%m%d-%H%M%S}{stamp.microsecond // 1000:03d}{uuid.uuid4().hex[:4]}"
        extension = ".parquet" if self.data_format == "parquet" else ".csv" + self._gz
        return f"{self.table_prefix(schema, table)}{name}{extension}"

    @property
    def _gz(self) -> str:
        return ".gz" if self.compression == "gzip" else ""

    # --- bodies ----------------------------------------------------------------------------------------
    def full_load_body(self, columns: Sequence[tuple[str, sa.types.TypeEngine[Any]]],
                       rows: Sequence[Sequence[Any]], loaded_at: float) -> bytes:
        ops = ["I"] * len(rows) if self.op_for_full_load else None
        stamps = [_timestamp(loaded_at)] * len(rows) if self.timestamp_column else None
        if self.data_format == "parquet":
            return self._parquet(columns, rows, ops, stamps)
        return self._csv([name for name, _ in columns], rows, ops, stamps)

    def cdc_body(self, columns: Sequence[tuple[str, sa.types.TypeEngine[Any]]],
                 changes: Sequence[tuple[str, float, Sequence[str | None]]]) -> bytes:
        """(Op, commit time, row) changes, the row's values as the source's text, as CSV or Parquet."""
        stamps = [_timestamp(when) for _, when, _ in changes] if self.timestamp_column else None
        ops, rows = [op for op, _, _ in changes], [row for _, _, row in changes]
        if self.data_format == "parquet":
            return self._parquet(columns, rows, ops, stamps, from_text=True)
        return self._csv([name for name, _ in columns], rows, ops, stamps)

    def _csv(self, names: list[str], rows: Sequence[Sequence[Any]], ops: list[str] | None,
             stamps: list[str] | None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator=self.row_delimiter)
        lead = (["Op"] if ops is not None else []) + ([self.timestamp_column] if stamps is not None else [])
        if self.add_column_name:
            writer.writerow(lead + names)
        for index, row in enumerate(rows):
            prefix = ([ops[index]] if ops is not None else []) + ([stamps[index]] if stamps is not None else [])
            writer.writerow(prefix + [self.null_value if v is None else _text(v) for v in row])
        body = out.getvalue().encode()
        return gzip.compress(body, mtime=0) if self.compression == "gzip" else body

    def _parquet(self, columns: Sequence[tuple[str, sa.types.TypeEngine[Any]]], rows: Sequence[Sequence[Any]],
                 ops: list[str] | None, stamps: list[str] | None, *, from_text: bool = False) -> bytes:
        fields, arrays = [], []
        if ops is not None:
            fields.append(pa.field("Op", pa.string()))
            arrays.append(pa.array(ops, pa.string()))
        if stamps is not None:
            fields.append(pa.field(self.timestamp_column, pa.string()))
            arrays.append(pa.array(stamps, pa.string()))
        for index, (name, sql_type) in enumerate(columns):
            arrow_type = arrow_type_of(sql_type)
            values = [row[index] for row in rows]
            if pa.types.is_string(arrow_type):
                values = [None if v is None else _text(v) for v in values]
            fields.append(pa.field(name, arrow_type))
            if from_text:  # logical decoding gives each value as Postgres prints it
                arrays.append(_from_text(values, arrow_type))
            else:
                arrays.append(pa.array(values, arrow_type))
        table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="gzip" if self.compression == "gzip" else "none")
        return buffer.getvalue()


def arrow_type_of(sql_type: sa.types.TypeEngine[Any]) -> pa.DataType:
    """The Parquet column type DMS gives a source column type (unknown types travel as strings)."""
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_()
    if isinstance(sql_type, sa.SmallInteger):
        return pa.int16()
    if isinstance(sql_type, sa.BigInteger):
        return pa.int64()
    if isinstance(sql_type, sa.Integer):
        return pa.int32() if type(sql_type).__name__ in ("INTEGER", "Integer") else pa.int64()
    if isinstance(sql_type, sa.Float):
        return pa.float32() if type(sql_type).__name__ == "REAL" else pa.float64()
    if isinstance(sql_type, sa.Numeric):
        precision, scale = sql_type.precision, sql_type.scale
        if precision and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.float64()
    if isinstance(sql_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if getattr(sql_type, "timezone", False) else pa.timestamp("us")
    if isinstance(sql_type, sa.Date):
        return pa.date32()
    if isinstance(sql_type, sa.Time):
        return pa.time64("us")
    if isinstance(sql_type, sa.LargeBinary):
        return pa.binary()
    return pa.string()


def _from_text(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    text = pa.array(values, pa.string())
    if pa.types.is_binary(arrow_type):  # bytea prints as \\x<hex>
        return pa.array([None if v is None else bytes.fromhex(v.removeprefix("\\x")) for v in values], arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.array([None if v is None else v in ("true", "t") for v in values], arrow_type)
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz:  # Postgres prints the offset as +00 or +05:30
        return pa.array([None if v is None else dt.datetime.fromisoformat(v) for v in values], arrow_type)
    return pc.cast(text, arrow_type)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    return str(value)


def _timestamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
