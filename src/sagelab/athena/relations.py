"""A catalog table as a DuckDB view: which files to read, how to read them, and the columns Athena shows.

Data columns come first in the catalog's order, then partition keys. Partition values come from the
catalog: when every partition folder is named `key=value` (as crawlers and CTAS write them), DuckDB's
Hive partitioning reads them from the paths and prunes files on partition filters; otherwise each
partition is read on its own with its values as constants. CSV fields are read as text and converted
with TRY_CAST, so a malformed value is NULL as in Athena; Parquet and JSON columns are cast to the
catalog's types.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sagelab.catalog.formats import TableFormat, table_format
from sagelab.catalog.types import duckdb_type
from sagelab.lake.blobs import BlobStore
from sagelab.lake.files import local_file
from sagelab.lake.uris import parse_s3_uri


@dataclasses.dataclass
class FileGroup:
    """The files of one partition (or of an unpartitioned table)."""

    values: list[str]
    paths: list[Path]
    hive_layout: bool


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_data_file(relative: str, size: int) -> bool:
    parts = relative.split("/")
    return size > 0 and not any(p.startswith(("_", ".")) for p in parts) and not relative.endswith(
        (".metadata", ".crc", "$folder$"))


def list_files(blobs: BlobStore, location: str, scratch: Path | None = None) -> list[Path]:
    """Every data file under an s3:// folder, as local paths (hidden and empty objects skipped); plain copies
    of objects encrypted at rest are made in `scratch`."""
    if not location:
        return []
    uri = parse_s3_uri(location, field="StorageDescriptor.Location")
    prefix = uri.key if not uri.key or uri.key.endswith("/") else uri.key + "/"
    try:
        objects = list(blobs.list(uri.bucket, prefix))
    except Exception:  # noqa: BLE001 - a missing bucket reads as an empty table, as in Athena
        return []
    return [local_file(blobs, uri.bucket, o.key, scratch) for o in objects
            if _is_data_file(o.key[len(prefix):], o.size)]


def file_groups(blobs: BlobStore, table: dict[str, Any], partitions: list[dict[str, Any]],
                scratch: Path | None = None) -> list[FileGroup]:
    keys = [k["Name"] for k in table.get("PartitionKeys") or []]
    if not keys:
        return [FileGroup([], list_files(blobs, table["StorageDescriptor"].get("Location", ""), scratch), False)]
    groups = []
    for partition in partitions:
        location = (partition.get("StorageDescriptor") or {}).get("Location", "")
        paths = list_files(blobs, location, scratch)
        expected = "/".join(f"{k}={v}" for k, v in zip(keys, partition["Values"], strict=False))
        hive = location.rstrip("/").endswith(expected)
        groups.append(FileGroup(list(partition["Values"]), paths, hive))
    return groups


def _reader(fmt: TableFormat, paths: list[Path], columns: list[dict[str, Any]], *, hive_keys: dict[str, str]) -> str:
    files = "[" + ", ".join(_literal(str(p)) for p in paths) + "]"
    hive = ""
    if hive_keys:
        types = ", ".join(f"{_literal(k)}: {_literal(t)}" for k, t in hive_keys.items())
        hive = f", hive_partitioning=true, hive_types={{{types}}}"
    gzipped = bool(paths) and _is_gzip(paths[0])
    if fmt.kind == "parquet":
        return f"read_parquet({files}, union_by_name=true{hive})"
    if fmt.kind == "json":
        spec = ", ".join(f"{_literal(c['Name'])}: {_literal(duckdb_type(c['Type']))}" for c in columns)
        return (f"read_json({files}, format='newline_delimited', columns={{{spec}}}, "
                f"compression='{'gzip' if gzipped else 'uncompressed'}'{hive})")
    spec = ", ".join(f"{_literal(c['Name'])}: 'VARCHAR'" for c in columns)
    skip = f", skip={fmt.header_lines}" if fmt.header_lines else ""
    return (f"read_csv({files}, auto_detect=false, header=false{skip}, delim={_literal(fmt.delimiter)}, "
            f"quote={_literal(fmt.quote)}, escape={_literal(fmt.escape)}, columns={{{spec}}}, "
            f"null_padding=true, strict_mode=false, compression='{'gzip' if gzipped else 'none'}'{hive})")


def _is_gzip(path: Path) -> bool:
    """Lake files may have no extension on disk, so compression is told by gzip's magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _parquet_names(paths: list[Path]) -> set[str] | None:
    """Column names found in the files' footers (a catalog column no file has reads as NULL)."""
    names: set[str] = set()
    sample = paths if len(paths) <= 100 else paths[:50] + paths[-50:]
    for path in sample:
        try:
            names.update(n.lower() for n in pq.read_schema(path).names)
        except Exception:  # noqa: BLE001 - an unreadable footer fails the query later, with DuckDB's message
            return None
    return names


def view_sql(blobs: BlobStore, table: dict[str, Any], partitions: list[dict[str, Any]],
             *, check_columns: bool = False, scratch: Path | None = None) -> tuple[str, int]:
    """The SELECT a view over `table` runs, and the bytes of the files it may read.

    With `check_columns`, Parquet footers are read first so that catalog columns no file has read as
    NULL; callers try without it first (DuckDB then reads each footer once) and retry when it fails."""
    fmt = table_format(table)
    columns = (table.get("StorageDescriptor") or {}).get("Columns") or []
    keys = table.get("PartitionKeys") or []
    groups = [g for g in file_groups(blobs, table, partitions, scratch) if g.paths]
    total = sum(p.stat().st_size for g in groups for p in g.paths)
    cast = "TRY_CAST" if fmt.kind == "csv" else "CAST"
    all_paths = [p for g in groups for p in g.paths]
    present = _parquet_names(all_paths) if check_columns and fmt.kind == "parquet" and all_paths else None

    def column_expr(c: dict[str, Any]) -> str:
        name = quote_identifier(c["Name"])
        if present is not None and c["Name"].lower() not in present:
            return f"CAST(NULL AS {duckdb_type(c['Type'])}) AS {name}"
        return f"{cast}({name} AS {duckdb_type(c['Type'])}) AS {name}"

    data = [column_expr(c) for c in columns]
    key_names = [quote_identifier(k["Name"]) for k in keys]
    if not groups:
        nulls = [f"CAST(NULL AS {duckdb_type(c['Type'])}) AS {quote_identifier(c['Name'])}" for c in columns + keys]
        return f"SELECT {', '.join(nulls) or 'NULL AS _empty'} WHERE false", 0
    if not keys:
        return f"SELECT {', '.join(data)} FROM {_reader(fmt, groups[0].paths, columns, hive_keys={})}", total
    if all(g.hive_layout for g in groups):
        hive_keys = {k["Name"]: duckdb_type(k.get("Type") or "string") for k in keys}
        reader = _reader(fmt, all_paths, columns, hive_keys=hive_keys)
        return f"SELECT {', '.join(data + key_names)} FROM {reader}", total
    parts = []
    for group in groups:
        constants = [f"CAST({_literal(v)} AS {duckdb_type(k.get('Type') or 'string')}) AS {quote_identifier(k['Name'])}"
                     for k, v in zip(keys, group.values, strict=False)]
        parts.append(f"SELECT {', '.join(data + constants)} FROM {_reader(fmt, group.paths, columns, hive_keys={})}")
    return " UNION ALL ".join(parts), total


def describe_columns(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns then partition keys, as Athena lists them."""
    return list((table.get("StorageDescriptor") or {}).get("Columns") or []) + list(table.get("PartitionKeys") or [])


def restricted_sql(select: str, columns: tuple[str, ...] | None, row_filter: str | None) -> str:
    """A view's SELECT narrowed to the columns and rows a caller may read (Lake Formation's grants)."""
    shown = "*" if columns is None else ", ".join(quote_identifier(c) for c in columns)
    where = f" WHERE ({row_filter})" if row_filter else ""
    return f"SELECT {shown} FROM ({select}) AS granted{where}"
