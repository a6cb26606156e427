"""The storage formats a catalog table can describe (CSV, JSON lines, Parquet), in Glue's own words.

`storage_descriptor` writes what a crawler or CTAS records (the Hive InputFormat/OutputFormat/SerDe class
names Glue uses); `table_format` reads any table back, however it was created, into the options the
query engine needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

CLASSIFICATIONS = ("csv", "json", "parquet")


@dataclasses.dataclass(frozen=True)
class TableFormat:
    """How to read a table's files."""

    kind: str  # csv | json | parquet
    delimiter: str = ","
    quote: str = ""  # "" means fields are never quoted (LazySimpleSerDe)
    escape: str = ""
    header_lines: int = 0
    null_text: str = ""


def storage_descriptor(kind: str, location: str, columns: list[dict[str, Any]], *, delimiter: str = ",",
                       quoted: bool = False) -> dict[str, Any]:
    """A StorageDescriptor for files of `kind` under `location`, as a Glue crawler writes it."""
    sd: dict[str, Any] = {"Columns": columns, "Location": location, "Compressed": False, "NumberOfBuckets": -1,
                          "BucketColumns": [], "SortColumns": [], "StoredAsSubDirectories": False}
    if kind == "parquet":
        sd.update(InputFormat=PARQUET_INPUT, OutputFormat=PARQUET_OUTPUT,
                  SerdeInfo={"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}})
    elif kind == "json":
        sd.update(InputFormat=TEXT_INPUT, OutputFormat=TEXT_OUTPUT,
                  SerdeInfo={"SerializationLibrary": JSON_SERDE, "Parameters": {"paths": ",".join(
                      c["Name"] for c in columns)}})
    elif quoted:
        sd.update(InputFormat=TEXT_INPUT, OutputFormat=TEXT_OUTPUT,
                  SerdeInfo={"SerializationLibrary": OPEN_CSV_SERDE,
                             "Parameters": {"separatorChar": delimiter, "quoteChar": '"', "escapeChar": "\\"}})
    else:
        sd.update(InputFormat=TEXT_INPUT, OutputFormat=TEXT_OUTPUT,
                  SerdeInfo={"SerializationLibrary": LAZY_SIMPLE_SERDE, "Parameters": {"field.delim": delimiter}})
    return sd


def table_format(table: dict[str, Any]) -> TableFormat:
    """Read a Table (or Partition) document's format, from its SerDe first and its classification last."""
    sd = table.get("StorageDescriptor") or {}
    serde = sd.get("SerdeInfo") or {}
    library = (serde.get("SerializationLibrary") or "").lower()
    serde_params = serde.get("Parameters") or {}
    table_params = {**(sd.get("Parameters") or {}), **(table.get("Parameters") or {})}
    input_format = (sd.get("InputFormat") or "").lower()
    classification = table_params.get("classification", "").lower()
    header = int(table_params.get("skip.header.line.count") or serde_params.get("skip.header.line.count") or 0)
    if "parquet" in library or "parquet" in input_format or classification == "parquet":
        return TableFormat("parquet")
    if "json" in library or classification == "json":
        return TableFormat("json")
    if "opencsv" in library:
        return TableFormat("csv", delimiter=serde_params.get("separatorChar", ","),
                           quote=serde_params.get("quoteChar", '"'), escape=serde_params.get("escapeChar", "\\"),
                           header_lines=header)
    delimiter = (serde_params.get("field.delim") or serde_params.get("serialization.format")
                 or table_params.get("delimiter") or ("," if classification == "csv" else "\x01"))
    if delimiter.isdigit():  # Hive writes the default ^A delimiter as serialization.format=1
        delimiter = chr(int(delimiter))
    return TableFormat("csv", delimiter=delimiter, quote="", escape=serde_params.get("escape.delim", ""),
                       header_lines=header, null_text=serde_params.get("serialization.null.format", ""))
