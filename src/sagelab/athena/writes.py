"""CREATE TABLE AS and INSERT INTO: DuckDB writes the files, the lake stores them, the catalog lists them.

Files are written by DuckDB's COPY into the query's scratch folder (Hive `key=value` folders for
partitions), then put into the lake under the table's location, then registered: CTAS creates the table
and its partitions, INSERT INTO adds the partitions that are new. Parquet is the default format, as in
Athena; JSON and TEXTFILE are also written.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from sagelab.athena.query import QueryContext, QueryFailed
from sagelab.athena.relations import list_files, quote_identifier
from sagelab.catalog.formats import storage_descriptor, table_format
from sagelab.catalog.types import duckdb_type, hive_type
from sagelab.errors import EntityNotFound, SagelabError
from sagelab.lake.uris import parse_s3_uri

if TYPE_CHECKING:
    from sagelab.catalog.store import CatalogStore
    from sagelab.lake.blobs import BlobStore

_FORMATS = {"parquet": "parquet", "json": "json", "textfile": "csv"}


def _fail(reason: str) -> Exception:
    return QueryFailed(reason)


def _copy(connection: duckdb.DuckDBPyConnection, select: str, folder: Path, kind: str, partition_by: list[str],
          prefix: str, delimiter: str = "\x01") -> int:
    options = [f"FORMAT {_FORMATS.get(kind, kind)}", f"FILENAME_PATTERN '{prefix}_{{i}}'"]
    if kind == "textfile" or kind == "csv":
        options += ["HEADER false", "DELIMITER '" + delimiter.replace("'", "''") + "'"]
    if partition_by:
        options.append("PARTITION_BY (" + ", ".join(quote_identifier(k) for k in partition_by) + ")")
        options.append("OVERWRITE_OR_IGNORE true")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        extension = {"parquet": "parquet", "json": "json"}.get(kind, "txt")
        target = folder / f"{prefix}_0.{extension}"
        row = connection.execute(f"COPY ({select}) TO '{target}' ({', '.join(options[:1] + options[2:])})").fetchone()
        return int(row[0]) if row else 0
    row = connection.execute(f"COPY ({select}) TO '{folder}' ({', '.join(options)})").fetchone()
    return int(row[0]) if row else 0


def _upload(blobs: BlobStore, catalog: CatalogStore, folder: Path, location: str) -> list[str]:
    """Put every file written under `folder` into the lake below `location`; returns their URIs."""
    base = parse_s3_uri(location, field="external_location")
    uris = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        target = base.join(relative)
        with path.open("rb") as f:
            blobs.put(target.bucket, target.key, iter(lambda f=f: f.read(1 << 20), b""))
        uris.append(str(target))
    return uris


def _partition_dirs(folder: Path, keys: list[str]) -> list[tuple[list[str], str]]:
    """(values, relative folder) of every partition folder DuckDB wrote."""
    found = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(folder).parts[:len(keys)]
        if len(parts) == len(keys) and all(p.startswith(f"{k}=") for p, k in zip(parts, keys, strict=True)):
            found["/".join(parts)] = [p.split("=", 1)[1] for p in parts]
    return [(values, rel) for rel, values in sorted(found.items())]


def _folder(location: str) -> str:
    return location if location.endswith("/") else location + "/"


def write_ctas(blobs: BlobStore, catalog: CatalogStore, ctx: QueryContext, connection: duckdb.DuckDBPyConnection,
               relation: duckdb.DuckDBPyRelation, scratch: Path) -> tuple[int, list[str]]:
    statement = ctx.statement
    database, name = statement.target or (None, "")
    database = (database or ctx.database).lower()
    name = name.lower()
    props = statement.properties
    kind = str(props.get("format", "parquet")).lower()
    if kind not in _FORMATS:
        raise _fail(f"NOT_SUPPORTED: format '{kind}': sagelab writes PARQUET, JSON and TEXTFILE tables.")
    if not catalog.database_exists(database):
        raise _fail(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")
    if catalog.find_table(database, name) is not None:
        if statement.if_exists:
            return 0, []
        raise _fail(f"ALREADY_EXISTS: Table '{'awsdatacatalog'}.{database}.{name}' already exists")
    location = _folder(str(props.get("external_location") or
                           f"{_folder(ctx.output_location)}tables/{ctx.query_id}/"))
    try:
        if list_files(blobs, location, scratch):
            raise _fail(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{database}.{name}' already "
                        f"exists: {location}. You may need to manually clean the data at location "
                        f"'{location}' before retrying.")
    except SagelabError as exc:
        raise _fail(f"INVALID_TABLE_PROPERTY: external_location: {exc.message}") from exc
    partitioned = [str(k).lower() for k in props.get("partitioned_by") or []]  # type: ignore[union-attr]
    schema = relation.limit(0).to_arrow_table().schema
    names = [n.lower() for n in schema.names]
    if partitioned and names[-len(partitioned):] != partitioned:
        raise _fail("INVALID_TABLE_PROPERTY: Partition keys must be the last columns in the table and in the "
                    f"same order as the table properties: {partitioned}")
    columns = [{"Name": f.name.lower(), "Type": hive_type(f.type)} for f in schema]
    data_columns = [c for c in columns if c["Name"] not in partitioned]
    keys = [c for c in columns if c["Name"] in partitioned]
    delimiter = str(props.get("field_delimiter", "\x01"))
    sd = storage_descriptor("csv" if kind == "textfile" else kind, location, data_columns, delimiter=delimiter)
    params = {"classification": "csv" if kind == "textfile" else kind, "has_encrypted_data": "false"}
    count, uris = 0, []
    if statement.with_data:
        relation.create_view("ctas_source")
        written = scratch / "out"
        prefix = f"{ctx.query_id}_{uuid.uuid4().hex[:8]}"
        count = _copy(connection, "SELECT * FROM ctas_source", written, kind, partitioned, prefix, delimiter)
        uris = _upload(blobs, catalog, written, location) if written.exists() else []
    catalog.create_table(database, {"Name": name, "StorageDescriptor": sd, "PartitionKeys": keys,
                                             "TableType": "EXTERNAL_TABLE", "Parameters": params})
    if partitioned and statement.with_data:
        specs = [{"Values": values, "StorageDescriptor": {**sd, "Location": f"{location}{rel}/"}}
                 for values, rel in _partition_dirs(scratch / "out", partitioned)]
        catalog.create_partitions(database, name, specs)
    return count, uris


def write_insert(blobs: BlobStore, catalog: CatalogStore, ctx: QueryContext, connection: duckdb.DuckDBPyConnection,
                 relation: duckdb.DuckDBPyRelation, scratch: Path) -> tuple[int, list[str]]:
    statement = ctx.statement
    database, name = statement.target or (None, "")
    database = (database or ctx.database).lower()
    try:
        table = catalog.get_table(database, name)
    except EntityNotFound:
        raise _fail(f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{database}.{name.lower()}' does not exist") from None
    fmt = table_format(table)
    data_columns = table["StorageDescriptor"].get("Columns") or []
    keys = table.get("PartitionKeys") or []
    target_columns = data_columns + keys
    source = relation.columns
    wanted = [c.lower() for c in statement.columns] if statement.columns else [c["Name"] for c in target_columns]
    unknown = [c for c in wanted if c not in {t["Name"] for t in target_columns}]
    if unknown:
        raise _fail(f"COLUMN_NOT_FOUND: Insert column name does not exist in target table: {unknown[0]}")
    if len(source) != len(wanted):
        raise _fail(f"TYPE_MISMATCH: Insert query has {len(source)} columns, target table "
                    f"'awsdatacatalog.{database}.{table['Name']}' has {len(wanted)}: {', '.join(wanted)}")
    relation.create_view("insert_source")
    by_target = dict(zip(wanted, source, strict=True))
    exprs = []
    for column in target_columns:
        target = quote_identifier(column["Name"])
        if column["Name"] in by_target:
            exprs.append(f"CAST({quote_identifier(by_target[column['Name']])} AS {duckdb_type(column['Type'])}) "
                         f"AS {target}")
        else:
            exprs.append(f"CAST(NULL AS {duckdb_type(column['Type'])}) AS {target}")
    select = f"SELECT {', '.join(exprs)} FROM insert_source"
    kind = {"csv": "textfile"}.get(fmt.kind, fmt.kind)
    location = _folder(table["StorageDescriptor"].get("Location", ""))
    written = scratch / "out"
    prefix = f"{ctx.query_id}_{uuid.uuid4().hex[:8]}"
    key_names = [k["Name"] for k in keys]
    count = _copy(connection, select, written, kind, key_names, prefix, fmt.delimiter)
    if not written.exists():
        return count, []
    uris = _upload(blobs, catalog, written, location)
    if keys:
        present = {tuple(p["Values"]) for p in catalog.list_partitions(database, table["Name"], table=table)}
        sd = table["StorageDescriptor"]
        specs = [{"Values": values, "StorageDescriptor": {**sd, "Location": f"{location}{rel}/"}}
                 for values, rel in _partition_dirs(written, key_names) if tuple(values) not in present]
        if specs:
            catalog.create_partitions(database, table["Name"], specs)
    return count, uris


