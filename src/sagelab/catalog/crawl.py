"""One crawl: list the crawler's S3 targets, group objects into tables, infer schemas, update the catalog.

How objects become tables (a simplified version of Glue's rules):
- Below an include path, each top-level folder is a table (`s3://b/lake/sales/...` -> table `sales`);
  when the include path itself holds data files, or only `key=value` folders, it is the table.
- Folders below a table's root are partitions: `key=value` names the key, any other folder becomes
  `partition_0`, `partition_1`, ... as Glue names them.
- Hidden objects (a path segment starting with `_` or `.`), empty objects, Athena's `.metadata` files and
  the crawler's Exclusions are skipped.
A second crawl adds the partitions that appeared, merges new columns into the schema (UpdateBehavior
UPDATE_IN_DATABASE) and, with DeleteBehavior DELETE_FROM_DATABASE, drops what vanished.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from sagelab.catalog.formats import storage_descriptor
from sagelab.catalog.sniff import FileSchema, sniff_file
from sagelab.catalog.store import CatalogStore
from sagelab.catalog.types import widen
from sagelab.errors import EntityNotFound, InvalidInput, SagelabError
from sagelab.iam.role_access import RoleAccess
from sagelab.lake.blobs import BlobStore, ObjectInfo
from sagelab.lake.files import local_file
from sagelab.lake.uris import S3Uri, parse_s3_uri

#: Files per table whose schema is read (the first ones and the newest ones).
SAMPLE_FILES = 6


class CrawlCancelled(Exception):
    pass


@dataclasses.dataclass
class CrawlStats:
    tables_created: int = 0
    tables_updated: int = 0
    tables_deleted: int = 0
    partitions_added: int = 0


@dataclasses.dataclass
class TableFiles:
    name: str
    bucket: str
    root: str  # key prefix ending in "/"
    files: list[tuple[ObjectInfo, tuple[str, ...]]] = dataclasses.field(default_factory=list)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.root}"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def table_name(segment: str, prefix: str = "") -> str:
    return prefix + (re.sub(r"[^a-z0-9_]", "_", segment.lower()) or "table")


def _is_skipped(relative: str, info: ObjectInfo) -> bool:
    parts = relative.split("/")
    return (info.size == 0 or any(p.startswith(("_", ".")) for p in parts) or relative.endswith(
        (".metadata", ".crc", "$folder$")))


def group_tables(bucket: str, prefix: str, objects: list[ObjectInfo], exclusions: list[str],
                 table_prefix: str = "") -> list[TableFiles]:
    """Split the objects under one include path into tables, with each file's partition folders."""
    excluded = [_glob_regex(p) for p in exclusions]
    files = []
    for info in objects:
        relative = info.key[len(prefix):]
        if not relative or _is_skipped(relative, info) or any(r.fullmatch(relative) for r in excluded):
            continue
        files.append((info, relative.split("/")[:-1]))
    if not files:
        return []
    root_is_table = any(not dirs for _, dirs in files) or all("=" in dirs[0] for _, dirs in files)
    tables: dict[str, TableFiles] = {}
    for info, dirs in files:
        if root_is_table:
            segment = prefix.rstrip("/").rsplit("/", 1)[-1] if prefix else bucket
            root, partition_dirs = prefix, dirs
        else:
            segment, root, partition_dirs = dirs[0], f"{prefix}{dirs[0]}/", dirs[1:]
        name = table_name(segment, table_prefix)
        table = tables.setdefault(root, TableFiles(name, bucket, root))
        table.files.append((info, tuple(partition_dirs)))
    for table in tables.values():
        # Files at another depth than most of the table's files cannot be given partition values.
        depth = collections.Counter(len(p) for _, p in table.files).most_common(1)[0][0]
        table.files = [(i, p) for i, p in table.files if len(p) == depth]
    return list(tables.values())


def partition_keys(table: TableFiles) -> list[str]:
    if not table.files:
        return []
    first = table.files[0][1]
    return [seg.split("=", 1)[0].lower() if "=" in seg else f"partition_{i}" for i, seg in enumerate(first)]


def partition_values(dirs: tuple[str, ...]) -> list[str]:
    return [seg.split("=", 1)[1] if "=" in seg else seg for seg in dirs]


class Crawl:
    def __init__(self, blobs: BlobStore, catalog: CatalogStore, crawler: dict[str, Any],
                 log: Callable[[str], None], cancelled: threading.Event, role: RoleAccess | None = None):
        self.blobs = blobs
        self.role = role
        self.catalog = catalog
        self.crawler = crawler
        self.log = log
        self.cancelled = cancelled
        self.stats = CrawlStats()
        policy = crawler.get("SchemaChangePolicy") or {}
        self.update_behavior = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
        self.delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
        self.database = (crawler.get("DatabaseName") or "").lower()

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise CrawlCancelled()

    def run(self) -> CrawlStats:
        if not self.database:
            raise InvalidInput("The crawler has no DatabaseName: set one with UpdateCrawler to say where "
                               "its tables go.")
        if not self.catalog.database_exists(self.database):
            self.catalog.create_database({"Name": self.database})
            self.log(f"Created database {self.database}")
        connection = duckdb.connect()
        try:
            seen_locations: set[str] = set()
            for target in (self.crawler.get("Targets") or {}).get("S3Targets") or []:
                uri = parse_s3_uri(target["Path"], field="S3Targets.Path")
                prefix = uri.key if not uri.key or uri.key.endswith("/") else uri.key + "/"
                if self.role is not None:
                    self.role.require_read(self.blobs, S3Uri(uri.bucket, prefix))
                objects = list(self.blobs.list(uri.bucket, prefix))
                tables = group_tables(uri.bucket, prefix, objects, target.get("Exclusions") or [],
                                      self.crawler.get("TablePrefix") or "")
                self.log(f"Target {target['Path']}: {len(objects)} objects, {len(tables)} tables")
                for table in tables:
                    self._check()
                    seen_locations.add(table.location)
                    self._crawl_table(connection, table)
            self._handle_vanished(seen_locations)
        finally:
            connection.close()
        return self.stats

    # --- one table ----------------------------------------------------------------------------------
    def _sample(self, table: TableFiles) -> list[tuple[ObjectInfo, tuple[str, ...]]]:
        files = table.files
        if len(files) <= SAMPLE_FILES:
            return files
        newest = sorted(files, key=lambda f: f[0].last_modified)[-(SAMPLE_FILES // 2):]
        return files[:SAMPLE_FILES // 2] + [f for f in newest if f not in files[:SAMPLE_FILES // 2]]

    def _infer(self, connection, table: TableFiles) -> FileSchema | None:
        merged: FileSchema | None = None
        for info, _ in self._sample(table):
            # A plain copy of an object encrypted at rest lives only while its schema is read.
            with tempfile.TemporaryDirectory(dir=self.blobs.staging_dir()) as scratch:
                try:
                    path = local_file(self.blobs, table.bucket, info.key, Path(scratch))
                    schema = sniff_file(connection, info.key, path)
                except (duckdb.Error, OSError, ValueError, SagelabError) as exc:
                    self.log(f"Skipped s3://{table.bucket}/{info.key}: its schema could not be read ({exc})")
                    continue
            if schema is None:
                continue
            if merged is None:
                merged = schema
            elif schema.kind == merged.kind:
                merged.columns = merge_columns(merged.columns, schema.columns)
                merged.records = None if merged.records is None or schema.records is None else (
                    merged.records + schema.records)
        return merged

    def _crawl_table(self, connection, table: TableFiles) -> None:
        schema = self._infer(connection, table)
        if schema is None:
            self.log(f"No readable data files under {table.location}; no table written")
            return
        keys = partition_keys(table)
        columns = [{"Name": n, "Type": t} for n, t in schema.columns if n not in keys]
        sd = storage_descriptor(schema.kind, table.location, columns, delimiter=schema.delimiter,
                                quoted=schema.quoted)
        if schema.compression != "none":
            sd["Compressed"] = True
        params = {"classification": schema.kind, "compressionType": schema.compression, "typeOfData": "file",
                  "objectCount": str(len(table.files)), "sizeKey": str(sum(i.size for i, _ in table.files)),
                  "UPDATED_BY_CRAWLER": self.crawler["Name"], "CrawlerSchemaDeserializerVersion": "1.0",
                  "CrawlerSchemaSerializerVersion": "1.0"}
        if schema.records is not None:
            params["recordCount"] = str(schema.records)
        if schema.kind == "csv":
            params.update({"delimiter": schema.delimiter, "areColumnsQuoted": str(schema.quoted).lower(),
                           "columnsOrdered": "true"})
            if schema.header:
                params["skip.header.line.count"] = "1"
        sd["Parameters"] = dict(params)
        spec = {"Name": table.name, "StorageDescriptor": sd, "PartitionKeys": [
            {"Name": k, "Type": "string"} for k in keys], "TableType": "EXTERNAL_TABLE", "Parameters": params,
            "Owner": "owner", "Retention": 0}
        existing = self.catalog.find_table(self.database, table.name)
        if existing is None:
            self.catalog.create_table(self.database, spec)
            self.stats.tables_created += 1
            self.log(f"Created table {self.database}.{table.name} ({schema.kind}, {len(columns)} columns, "
                     f"{len(keys)} partition keys)")
        else:
            spec = self._updated_spec(existing, spec)
            if spec is not None:
                self.catalog.update_table(self.database, spec)
                self.stats.tables_updated += 1
                self.log(f"Updated table {self.database}.{table.name}")
            spec = spec or existing
        if keys:
            self._add_partitions(table, spec)

    def _updated_spec(self, existing: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
        old_columns = [(c["Name"], c["Type"]) for c in existing["StorageDescriptor"].get("Columns") or []]
        new_columns = [(c["Name"], c["Type"]) for c in spec["StorageDescriptor"]["Columns"]]
        merged = merge_columns(old_columns, new_columns)
        same_keys = [k["Name"] for k in existing.get("PartitionKeys") or []] == [
            k["Name"] for k in spec["PartitionKeys"]]
        if merged == old_columns and same_keys:
            return None
        if self.update_behavior == "LOG":
            self.log(f"Schema of {self.database}.{existing['Name']} changed; not updated (UpdateBehavior LOG)")
            return None
        spec["StorageDescriptor"]["Columns"] = [{"Name": n, "Type": t} for n, t in merged]
        return spec

    def _add_partitions(self, table: TableFiles, spec: dict[str, Any]) -> None:
        present = {tuple(p["Values"]) for p in self.catalog.list_partitions(self.database, table.name)}
        found: dict[tuple[str, ...], str] = {}
        for _, dirs in table.files:
            found.setdefault(tuple(partition_values(dirs)), f"{table.location}{'/'.join(dirs)}/")
        new = []
        for values, location in found.items():
            if values in present:
                continue
            sd = {**spec["StorageDescriptor"], "Location": location}
            new.append({"Values": list(values), "StorageDescriptor": sd, "Parameters": dict(spec["Parameters"])})
        if new:
            self.catalog.create_partitions(self.database, table.name, new)
            self.stats.partitions_added += len(new)
            self.log(f"Added {len(new)} partitions to {self.database}.{table.name}")
        gone = [list(v) for v in present if v not in found]
        if gone and self.delete_behavior == "DELETE_FROM_DATABASE":
            self.catalog.delete_partitions(self.database, table.name, gone)
            self.log(f"Deleted {len(gone)} partitions of {self.database}.{table.name} whose data is gone")

    def _handle_vanished(self, seen_locations: set[str]) -> None:
        """Tables this crawler wrote whose folder is now empty (DeleteBehavior decides what happens)."""
        try:
            tables = self.catalog.list_tables(self.database)
        except EntityNotFound:
            return
        for doc in tables:
            if (doc.get("Parameters") or {}).get("UPDATED_BY_CRAWLER") != self.crawler["Name"]:
                continue
            location = doc["StorageDescriptor"].get("Location", "")
            if location in seen_locations or not self._under_targets(location):
                continue
            if self.delete_behavior == "DELETE_FROM_DATABASE":
                self.catalog.delete_table(self.database, doc["Name"])
                self.stats.tables_deleted += 1
                self.log(f"Deleted table {self.database}.{doc['Name']}: no data left at {location}")
            elif self.delete_behavior == "DEPRECATE_IN_DATABASE":
                params = doc.get("Parameters") or {}
                if "DEPRECATED_BY_CRAWLER" not in params:
                    spec = {k: v for k, v in doc.items() if k in ("Name", "StorageDescriptor", "PartitionKeys",
                                                                  "TableType", "Owner", "Retention", "Description")}
                    spec["Parameters"] = {**params, "DEPRECATED_BY_CRAWLER": "1"}
                    self.catalog.update_table(self.database, spec)
                    self.stats.tables_updated += 1
                    self.log(f"Deprecated table {self.database}.{doc['Name']}: no data left at {location}")

    def _under_targets(self, location: str) -> bool:
        folder = location.rstrip("/") + "/"
        return any(folder.startswith(t["Path"].rstrip("/") + "/")
                   for t in (self.crawler.get("Targets") or {}).get("S3Targets") or [])


def merge_columns(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Old columns in their order (types widened where the new files disagree), then new columns."""
    new_types = dict(new)
    merged = [(n, widen(t, new_types[n]) if n in new_types else t) for n, t in old]
    known = {n for n, _ in old}
    merged += [(n, t) for n, t in new if n not in known]
    return merged
