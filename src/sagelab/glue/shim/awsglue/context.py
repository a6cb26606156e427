"""`GlueContext` for Spark scripts run by sagelab: DynamicFrames read from and written to the lake.

Reads list the objects through the S3 face and copy them to the run's staging folder (`awsglue.lake`), where
Spark reads them; a catalog table's partitions come from GetPartitions, so `push_down_predicate` is Glue's
partition expression evaluated by the catalog and only the matching partitions' files are fetched. With
`--job-bookmark-option job-bookmark-enable`, a read with a `transformation_ctx` is handed only the objects
that no committed run of the job has read (by key and LastModified, as `sagelab.glue.bookmarks` does for
Python shell jobs), and `job.commit()` records the progress.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

from awsglue.dynamicframe import DynamicFrame
from awsglue.lake import Lake, split_uri

from sagelab.catalog.formats import table_format
from sagelab.glue import bookmarks

READ_FORMATS = ("csv", "json", "parquet", "glueparquet", "orc")
WRITE_FORMATS = ("csv", "json", "parquet", "glueparquet", "orc")


class _Bookmarks:
    """The bookmark entries (by transformation_ctx) this run read from, and how far it got."""

    def __init__(self) -> None:
        self.option = os.environ.get("SAGELAB_JOB_BOOKMARK_OPTION", "job-bookmark-disable")
        self.state = bookmarks.saved_state()
        self.pending: dict[str, Any] = {}

    def select(self, ctx: str, objects: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
        if self.option == "job-bookmark-disable" or not ctx:
            return objects
        seen = self.state.get(ctx, {})
        keyed = [(t, _uri_of(o)) for t, o in objects]
        new = {k for _, k in bookmarks.unseen(keyed, seen)}
        if self.option == "job-bookmark-enable" and objects:
            self.pending[ctx] = bookmarks.advanced(keyed, seen)
        return [(t, o) for t, o in objects if _uri_of(o) in new]

    def commit(self) -> None:
        if self.option == "job-bookmark-enable" and self.pending:
            bookmarks.save_progress(self.pending)


def _uri_of(item: Any) -> str:
    return item if isinstance(item, str) else item[0]


class GlueContext:
    def __init__(self, sparkContext: Any, **options: Any):  # noqa: N803 - Glue's name
        from pyspark.sql import SparkSession

        self._sc = sparkContext
        self.spark_session = SparkSession.builder.getOrCreate()
        self._lake = Lake()
        self._bookmarks = _Bookmarks()
        self._glue: Any = None
        self.create_dynamic_frame = _Reader(self)
        self.write_dynamic_frame = _Writer(self)

    @property
    def sparkContext(self) -> Any:  # noqa: N802 - Glue's name
        return self._sc

    def getSparkSession(self) -> Any:  # noqa: N802 - Glue's name
        return self.spark_session

    def get_logger(self) -> _Logger:
        return _Logger()

    def create_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def create_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.write_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.write_dynamic_frame.from_catalog(*args, **kwargs)

    # --- catalog ------------------------------------------------------------------------------------
    @property
    def glue(self) -> Any:
        if self._glue is None:
            import boto3

            self._glue = boto3.client("glue")
        return self._glue

    def _table(self, database: str, table_name: str) -> dict[str, Any]:
        return self.glue.get_table(DatabaseName=database, Name=table_name)["Table"]

    def _catalog_types(self, database: str | None, table_name: str | None) -> dict[str, str]:
        if not database or not table_name:
            raise ValueError("ResolveChoice with match_catalog needs database= and table_name=.")
        table = self._table(database, table_name)
        columns = table["StorageDescriptor"].get("Columns", []) + table.get("PartitionKeys", [])
        return {c["Name"].lower(): c["Type"] for c in columns}

    def _partitions(self, database: str, table_name: str, expression: str) -> list[dict[str, Any]]:
        params = {"DatabaseName": database, "TableName": table_name}
        if expression:
            params["Expression"] = expression
        found = []
        for page in self.glue.get_paginator("get_partitions").paginate(**params):
            found += page["Partitions"]
        return found


class _Logger:
    """GlueContext.get_logger(): lines go to the run's output log."""

    def _say(self, level: str, message: str) -> None:
        print(f"{level} {message}", flush=True)

    def info(self, message: str) -> None:
        self._say("INFO", message)

    def warn(self, message: str) -> None:
        self._say("WARN", message)

    def error(self, message: str) -> None:
        self._say("ERROR", message)


def _check_s3(connection_type: str) -> None:
    if connection_type != "s3":
        raise ValueError(f"connection_type must be 's3' (the lake) in sagelab, got {connection_type!r}.")


def _check_format(fmt: str | None, allowed: tuple[str, ...]) -> str:
    if fmt not in allowed:
        raise ValueError(f"format must be one of {', '.join(allowed)}, got {fmt!r}.")
    return "parquet" if fmt == "glueparquet" else fmt


def _csv_options(options: dict[str, Any]) -> dict[str, str]:
    """Glue's CSV format_options as Spark's reader options."""
    quote = options.get("quoteChar", '"')
    out = {"sep": options.get("separator", ","), "header": str(bool(options.get("withHeader", False))).lower(),
           "quote": "\u0000" if quote in (-1, "-1") else quote, "escape": options.get("escaper", "\\"),
           "multiLine": str(bool(options.get("multiLine", False))).lower(), "inferSchema": "true"}
    return out


class _Reader:
    def __init__(self, context: GlueContext):
        self.context = context

    @property
    def spark(self) -> Any:
        return self.context.spark_session

    def _empty(self, name: str) -> DynamicFrame:
        from pyspark.sql.types import StructType

        return DynamicFrame(self.spark.createDataFrame([], StructType([])), self.context, name)

    def from_options(self, connection_type: str, connection_options: dict[str, Any] | None = None,
                     format: str | None = None, format_options: dict[str, Any] | None = None,  # noqa: A002
                     transformation_ctx: str = "", push_down_predicate: str = "", **kwargs: Any) -> DynamicFrame:
        _check_s3(connection_type)
        fmt = _check_format(format, READ_FORMATS)
        options = connection_options or {}
        paths = options.get("paths") or ([options["path"]] if options.get("path") else [])
        if not paths:
            raise ValueError("connection_options must name the input: {'paths': ['s3://bucket/prefix/', ...]}.")
        recurse = bool(options.get("recurse", False))
        objects = []
        for path in paths:
            _, prefix = split_uri(path)
            folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
            for when, uri in self.context._lake.list(path):
                _, key = split_uri(uri)
                if recurse or key == prefix or "/" not in key[len(folder):]:
                    objects.append((when, uri))
        objects = self.context._bookmarks.select(transformation_ctx, sorted(set(objects)))
        if not objects:
            return self._empty(transformation_ctx)
        _, files = self.context._lake.fetch([uri for _, uri in objects])
        reader = self.spark.read.format(fmt)
        fo = format_options or {}
        if fmt == "csv":
            reader = reader.options(**_csv_options(fo))
        elif fmt == "json":
            reader = reader.option("multiLine", str(bool(fo.get("multiLine", False))).lower())
        df = reader.load([str(f) for f in files])
        if fmt == "csv" and not fo.get("withHeader"):
            # Glue names the fields of a header-less CSV col0, col1, ...
            df = df.toDF(*(f"col{i}" for i in range(len(df.columns))))
        return DynamicFrame(df, self.context, transformation_ctx)

    def from_catalog(self, database: str = "", table_name: str = "", redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "",
                     additional_options: dict[str, Any] | None = None, catalog_id: str | None = None,
                     name_space: str = "", **kwargs: Any) -> DynamicFrame:
        database = database or name_space
        table = self.context._table(database, table_name)
        sd = table["StorageDescriptor"]
        keys = [k["Name"] for k in table.get("PartitionKeys") or []]
        # (when, (uri, local relative path)): partition values come from the catalog, laid out as key=value.
        objects: list[tuple[float, tuple[str, str]]] = []
        if keys:
            for partition in self.context._partitions(database, table_name, push_down_predicate):
                segments = "/".join(f"{k}={urllib.parse.quote(v, safe='')}"
                                    for k, v in zip(keys, partition["Values"], strict=True))
                location = partition["StorageDescriptor"]["Location"]
                for when, uri in self.context._lake.list(location):
                    objects.append((when, (uri, f"{segments}/{uri.rsplit('/', 1)[-1]}")))
        else:
            for when, uri in self.context._lake.list(sd["Location"]):
                objects.append((when, (uri, uri[5:])))
        objects = self.context._bookmarks.select(transformation_ctx, sorted(objects))
        if not objects:
            return self._empty(transformation_ctx)
        folder, _ = self.context._lake.fetch([o for _, o in objects])
        fmt = table_format(table)
        reader = self.spark.read.format(fmt.kind).option("basePath", str(folder)).option(
            "recursiveFileLookup", "false")
        if fmt.kind == "csv":
            reader = reader.options(sep=fmt.delimiter, header=str(fmt.header_lines > 0).lower(),
                                    quote=fmt.quote or "\u0000", escape=fmt.escape or "\\",
                                    inferSchema="false")
            if fmt.null_text:
                reader = reader.option("nullValue", fmt.null_text)
        conf = self.spark.conf
        inference = conf.get("spark.sql.sources.partitionColumnTypeInference.enabled")
        conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        try:
            df = reader.load([str(p) for p in sorted({(folder / rel).parent for _, (_, rel) in objects})]
                             if keys else [str(folder / rel) for _, (_, rel) in objects])
        finally:
            conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", inference)
        return DynamicFrame(_as_catalog(df, sd.get("Columns", []), table.get("PartitionKeys") or [],
                                        positional=fmt.kind == "csv"), self.context, transformation_ctx)


def _as_catalog(df: Any, columns: list[dict[str, Any]], partition_keys: list[dict[str, Any]],
                positional: bool) -> Any:
    """The frame with the table's column names and types (CSV columns are matched by position)."""
    from pyspark.sql import functions as F  # noqa: N812

    data = [c for c in df.columns if c not in {k["Name"] for k in partition_keys}]
    selected = []
    for i, column in enumerate(columns):
        if positional:
            source = F.col(f"`{data[i]}`") if i < len(data) else F.lit(None)
        else:
            match = next((c for c in data if c.lower() == column["Name"].lower()), None)
            source = F.col(f"`{match}`") if match else F.lit(None)
        selected.append(source.cast(column["Type"]).alias(column["Name"]))
    selected += [F.col(f"`{k['Name']}`").cast(k["Type"]).alias(k["Name"]) for k in partition_keys]
    return df.select(*selected)


class _Writer:
    def __init__(self, context: GlueContext):
        self.context = context

    def from_options(self, frame: DynamicFrame, connection_type: str = "s3",
                     connection_options: dict[str, Any] | None = None, format: str | None = None,  # noqa: A002
                     format_options: dict[str, Any] | None = None, transformation_ctx: str = "",
                     **kwargs: Any) -> DynamicFrame:
        _check_s3(connection_type)
        fmt = _check_format(format, WRITE_FORMATS)
        options = connection_options or {}
        path = options.get("path")
        if not path:
            raise ValueError("connection_options must name the output: {'path': 's3://bucket/prefix/'}.")
        split_uri(path)
        df = frame.toDF()
        if not df.columns:
            return frame  # nothing was read (e.g. no new files since the bookmark): nothing to write
        fo = format_options or {}
        folder = self.context._lake.new_output_folder()
        writer = df.write.mode("overwrite").format(fmt)
        if options.get("partitionKeys"):
            writer = writer.partitionBy(*options["partitionKeys"])
        if fmt == "csv":
            writer = writer.options(header=str(bool(fo.get("writeHeader", True))).lower(),
                                    sep=fo.get("separator", ","), quote=fo.get("quoteChar", '"'))
        elif fmt == "parquet" and fo.get("compression"):
            writer = writer.option("compression", fo["compression"])
        writer.save(str(folder))
        self.context._lake.upload(Path(folder), path)
        return frame

    def from_catalog(self, frame: DynamicFrame, database: str = "", table_name: str = "",
                     transformation_ctx: str = "", additional_options: dict[str, Any] | None = None,
                     name_space: str = "", **kwargs: Any) -> DynamicFrame:
        table = self.context._table(database or name_space, table_name)
        fmt = table_format(table)
        keys = [k["Name"] for k in table.get("PartitionKeys") or []]
        fo = {"separator": fmt.delimiter, "writeHeader": fmt.header_lines > 0} if fmt.kind == "csv" else {}
        return self.from_options(frame, "s3", {"path": table["StorageDescriptor"]["Location"],
                                               "partitionKeys": keys}, fmt.kind, fo, transformation_ctx)
