"""Statements Athena answers from the catalog alone: SHOW, DESCRIBE, CREATE/DROP DATABASE, DROP TABLE,
MSCK REPAIR TABLE. Their results are plain text rows without a header row, as Athena returns them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa

from sagelab.athena.query import QueryContext, QueryFailed
from sagelab.athena.relations import describe_columns
from sagelab.catalog.formats import storage_descriptor
from sagelab.errors import AlreadyExistsError, EntityNotFound, InvalidInput
from sagelab.lake.uris import parse_s3_uri

if TYPE_CHECKING:
    from sagelab.catalog.store import CatalogStore
    from sagelab.lake.blobs import BlobStore


def _fail(reason: str) -> Exception:
    return QueryFailed(reason)


def _rows(**columns: list[str]) -> pa.Table:
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


def _like(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    return re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in pattern.split("|")), re.IGNORECASE)


def _table(catalog: CatalogStore, ctx: QueryContext) -> dict:
    database, name = ctx.statement.target or (None, "")
    database = (database or ctx.database).lower()
    try:
        table = catalog.get_table(database, name)
    except EntityNotFound:
        raise _fail(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{database}.{name.lower()}' does not exist") from None
    if ctx.gate is not None and not ctx.gate(table).visible:
        raise _fail("Insufficient permissions to execute the query. Insufficient Lake Formation permission(s) on "
                    f"{database}.{table['Name']}")
    return table


def _visible(catalog: CatalogStore, ctx: QueryContext, database: str, name: str) -> bool:
    if ctx.gate is None:
        return True
    table = catalog.find_table(database, name)
    return table is not None and ctx.gate(table).visible


def run(blobs: BlobStore, catalog: CatalogStore, ctx: QueryContext) -> pa.Table:
    statement = ctx.statement
    kind = statement.kind
    if kind == "show_databases":
        pattern = _like(statement.pattern)
        names = [d["Name"] for d in catalog.list_databases() if pattern is None or pattern.fullmatch(d["Name"])]
        return _rows(database_name=names)
    if kind == "show_tables":
        database = ((statement.target or (None, ""))[0] or ctx.database).lower()
        if not catalog.database_exists(database):
            raise _fail(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")
        pattern = _like(statement.pattern)
        return _rows(tab_name=[n for n in sorted(catalog.table_names(database))
                               if (pattern is None or pattern.fullmatch(n)) and _visible(catalog, ctx, database, n)])
    if kind in ("show_columns", "describe"):
        table = _table(catalog, ctx)
        columns = describe_columns(table)
        shown = ctx.gate(table).described if ctx.gate is not None else None
        if shown is not None:  # Lake Formation granted only some columns: DESCRIBE shows only those
            columns = [c for c in columns if c["Name"].lower() in shown]
        if kind == "show_columns":
            return _rows(field=[c["Name"] for c in columns])
        return _rows(col_name=[c["Name"] for c in columns], data_type=[c.get("Type", "") for c in columns],
                     comment=[c.get("Comment", "") for c in columns])
    if kind == "show_partitions":
        table = _table(catalog, ctx)
        keys = [k["Name"] for k in table.get("PartitionKeys") or []]
        partitions = catalog.list_partitions(table["DatabaseName"], table["Name"], table=table)
        return _rows(partition=["/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=False))
                                for p in partitions])
    if kind == "create_database":
        name = statement.target[1] if statement.target else ""
        try:
            catalog.create_database({"Name": name})
        except AlreadyExistsError:
            if not statement.if_exists:
                raise _fail(f"ALREADY_EXISTS: Schema '{name.lower()}' already exists") from None
        return _rows()
    if kind == "drop_database":
        name = (statement.target[1] if statement.target else "").lower()
        if not catalog.database_exists(name):
            if statement.if_exists:
                return _rows()
            raise _fail(f"SCHEMA_NOT_FOUND: Schema '{name}' does not exist")
        if catalog.table_names(name) and not statement.cascade:
            raise _fail(f"SCHEMA_NOT_EMPTY: Cannot drop non-empty schema '{name}'")
        catalog.delete_database(name)
        return _rows()
    if kind == "drop_table":
        database, name = statement.target or (None, "")
        database = (database or ctx.database).lower()
        try:
            catalog.delete_table(database, name)
        except EntityNotFound:
            if not statement.if_exists:
                raise _fail(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{database}.{name.lower()}' does not "
                            "exist") from None
        return _rows()
    if kind == "create_table":
        return _create_table(catalog, ctx)
    if kind == "repair_table":
        return _repair(blobs, catalog, _table(catalog, ctx))
    raise _fail(f"NOT_SUPPORTED: {statement.substatement}")


def _create_table(catalog: CatalogStore, ctx: QueryContext) -> pa.Table:
    """CREATE EXTERNAL TABLE: a catalog entry over files already in the lake (nothing is read or written)."""
    statement = ctx.statement
    props = statement.properties
    database, name = statement.target or (None, "")
    database = (database or ctx.database).lower()
    if not catalog.database_exists(database):
        raise _fail(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")
    serde = str(props.get("serde") or "")
    serde_props = dict(props.get("serde_properties") or {})
    stored = str(props.get("stored_as") or "")
    kind = "parquet" if stored == "parquet" or "parquet" in serde.lower() else (
        "json" if stored == "json" or "json" in serde.lower() else "csv")
    delimiter = str(props.get("delimiter") or serde_props.get("separatorChar") or serde_props.get("field.delim")
                    or "\x01")
    sd = storage_descriptor(kind, str(props["location"]), list(props["columns"]), delimiter=delimiter,
                            quoted="opencsv" in serde.lower())
    if serde:
        sd["SerdeInfo"] = {"SerializationLibrary": serde, "Parameters": serde_props or sd["SerdeInfo"]["Parameters"]}
    elif props.get("escape"):
        sd["SerdeInfo"]["Parameters"]["escape.delim"] = str(props["escape"])
    if props.get("input_format"):
        sd["InputFormat"], sd["OutputFormat"] = str(props["input_format"]), str(props.get("output_format", ""))
    parameters = {"classification": kind, "EXTERNAL": "TRUE", **dict(props.get("table_properties") or {})}
    spec = {"Name": name, "StorageDescriptor": sd, "PartitionKeys": list(props.get("partition_keys") or []),
            "TableType": "EXTERNAL_TABLE", "Parameters": parameters}
    if props.get("comment"):
        spec["Description"] = str(props["comment"])
    try:
        catalog.create_table(database, spec)
    except AlreadyExistsError:
        if not statement.if_exists:
            raise _fail(f"ALREADY_EXISTS: Table 'awsdatacatalog.{database}.{name.lower()}' already exists") from None
    except InvalidInput as exc:
        raise _fail(f"INVALID_TABLE_PROPERTY: {exc.message}") from None
    return _rows()


def _repair(blobs: BlobStore, catalog: CatalogStore, table: dict) -> pa.Table:
    """MSCK REPAIR TABLE: register the `key=value` folders under the table's location not yet known."""
    keys = [k["Name"] for k in table.get("PartitionKeys") or []]
    if not keys:
        return _rows()
    sd = table["StorageDescriptor"]
    location = sd.get("Location", "").rstrip("/") + "/"
    uri = parse_s3_uri(location, field="StorageDescriptor.Location")
    found: dict[tuple[str, ...], str] = {}
    for info in blobs.list(uri.bucket, uri.key):
        parts = info.key[len(uri.key):].split("/")[:len(keys)]
        if len(parts) == len(keys) and all(p.lower().startswith(f"{k}=") for p, k in zip(parts, keys, strict=True)):
            found.setdefault(tuple(p.split("=", 1)[1] for p in parts), "/".join(parts))
    present = {tuple(p["Values"]) for p in catalog.list_partitions(table["DatabaseName"], table["Name"],
                                                                           table=table)}
    new = [{"Values": list(v), "StorageDescriptor": {**sd, "Location": f"{location}{rel}/"}}
           for v, rel in sorted(found.items()) if v not in present]
    if new:
        catalog.create_partitions(table["DatabaseName"], table["Name"], new)
    return _rows(result=[f"Repair: Added partition to metastore {table['Name']}:{n['StorageDescriptor']['Location']}"
                         for n in new])
