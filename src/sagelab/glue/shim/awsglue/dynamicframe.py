"""`DynamicFrame` for scripts run by sagelab: a thin wrapper over a Spark DataFrame.

Glue's DynamicFrame keeps a per-record schema and a "choice" type for a field whose records disagree
(an int here, a string there). Here the frame is a DataFrame, so every field has one type: the one Spark
infers when reading, which for a field of mixed values is the widest that holds them all (string for ints
mixed with words). ResolveChoice's actions then work on that one type (see `resolveChoice`).
Field paths are Glue's: `a.b` is field b inside struct a; a top-level field whose name contains a dot (as
Relationalize writes them) is matched by its whole name first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def _col(df: Any, path: str) -> Any:
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias

    if path in df.columns:
        return F.col(f"`{path}`")
    return F.col(".".join(f"`{part}`" for part in path.split(".")))


def _has(df: Any, path: str) -> bool:
    if path in df.columns:
        return True
    from pyspark.errors import AnalysisException

    try:
        df.select(_col(df, path))
    except AnalysisException:
        return False
    return True


class DynamicRecord(dict):
    """One record handed to `filter` and `map` functions: a dict of its fields (nested ones as dicts)."""


def _record(row: Any) -> DynamicRecord:
    return DynamicRecord(row.asDict(recursive=True))


class DynamicFrame:
    def __init__(self, jdf: Any, glue_ctx: Any, name: str = ""):
        # Glue passes the JVM frame; here it is the Spark DataFrame itself.
        self._df = jdf
        self.glue_ctx = glue_ctx
        self.name = name

    @staticmethod
    def fromDF(dataframe: Any, glue_ctx: Any, name: str) -> DynamicFrame:  # noqa: N802 - Glue's name
        return DynamicFrame(dataframe, glue_ctx, name)

    def _with(self, df: Any, name: str | None = None) -> DynamicFrame:
        return DynamicFrame(df, self.glue_ctx, name if name is not None else self.name)

    def toDF(self, options: Any = None) -> Any:  # noqa: N802 - Glue's name
        return self._df

    def count(self) -> int:
        return self._df.count()

    def schema(self) -> Any:
        """The Spark StructType of the frame (Glue returns its own schema type of the same shape)."""
        return self._df.schema

    def printSchema(self) -> None:  # noqa: N802 - Glue's name
        self._df.printSchema()

    def show(self, num_rows: int = 20) -> None:
        self._df.show(num_rows, truncate=False)

    def getNumPartitions(self) -> int:  # noqa: N802 - Glue's name
        return self._df.rdd.getNumPartitions()

    def repartition(self, num_partitions: int, **_: Any) -> DynamicFrame:
        return self._with(self._df.repartition(num_partitions))

    def coalesce(self, num_partitions: int, **_: Any) -> DynamicFrame:
        return self._with(self._df.coalesce(num_partitions))

    def errorsCount(self) -> int:  # noqa: N802 - Glue's name; a DataFrame keeps no error records
        return 0

    def stageErrorsCount(self) -> int:  # noqa: N802 - Glue's name
        return 0

    # --- field transforms -----------------------------------------------------------------------------
    def select_fields(self, paths: list[str], transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        return self._with(self._df.select(*(_col(self._df, p).alias(p.split(".")[-1]) for p in paths
                                            if _has(self._df, p))))

    def drop_fields(self, paths: list[str], transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        df = self._df
        for path in paths:
            if path in df.columns:
                df = df.drop(path)
            elif "." in path and _has(df, path):
                parent, _, leaf = path.rpartition(".")
                df = df.withColumn(parent.split(".")[0], _drop_nested(df, parent, leaf))
        return self._with(df)

    def rename_field(self, oldName: str, newName: str, transformation_ctx: str = "", **_: Any) -> DynamicFrame:  # noqa: N803
        df = self._df
        if oldName in df.columns:
            return self._with(df.withColumnRenamed(oldName, newName))
        if not _has(df, oldName):
            return self
        # A nested field moves to the top level under its new name.
        parent, _, leaf = oldName.rpartition(".")
        df = df.withColumn(newName, _col(df, oldName))
        return self._with(df.withColumn(parent.split(".")[0], _drop_nested(df, parent, leaf)))

    def apply_mapping(self, mappings: list[tuple], case_sensitive: bool = False, transformation_ctx: str = "",
                      **_: Any) -> DynamicFrame:
        """Keep only the mapped fields, renamed and cast; a source field the frame lacks is left out."""
        columns = []
        for mapping in mappings:
            if len(mapping) != 4:
                raise ValueError(f"Each mapping must be (source, source type, target, target type), got {mapping!r}.")
            source, _, target, target_type = mapping
            if _has(self._df, source):
                columns.append(_col(self._df, source).cast(_spark_type(target_type)).alias(target))
        return self._with(self._df.select(*columns))

    def resolveChoice(self, specs: list[tuple[str, str]] | None = None, choice: str = "",  # noqa: N802
                      database: str | None = None, table_name: str | None = None, transformation_ctx: str = "",
                      **_: Any) -> DynamicFrame:
        """Glue's actions on the one type each field has here: `cast:T` and `project:T` cast to T,
        `make_cols` renames the field to `<field>_<type>`, `make_struct` wraps it in a struct with one
        field named after its type, `match_catalog` casts to the types of `database`.`table_name`. A
        `choice` without `specs` applies to choice fields only, which a DataFrame has none of, except for
        `match_catalog`, which casts every field the table has."""
        df = self._df
        if not specs and choice == "match_catalog":
            specs = [(c, "match_catalog") for c in df.columns]
        catalog_types = None
        for path, action in specs or []:
            if not _has(df, path):
                continue
            kind, _, type_name = action.partition(":")
            current = df.select(_col(df, path)).schema.fields[0].dataType.simpleString()
            top = path if path in df.columns else path.split(".")[0]
            if kind in ("cast", "project"):
                df = _replace(df, path, _col(df, path).cast(_spark_type(type_name)))
            elif kind == "make_cols":
                df = df.withColumn(f"{path.replace('.', '_')}_{current}", _col(df, path))
                df = df.drop(top) if top == path else df
            elif kind == "make_struct":
                from pyspark.sql import functions as F  # noqa: N812

                df = _replace(df, path, F.struct(_col(df, path).alias(current)))
            elif kind == "match_catalog":
                if catalog_types is None:
                    catalog_types = self.glue_ctx._catalog_types(database, table_name)
                if path.lower() in catalog_types:
                    df = _replace(df, path, _col(df, path).cast(catalog_types[path.lower()]))
            else:
                raise ValueError(f"ResolveChoice action must be cast:<type>, project:<type>, make_cols, "
                                 f"make_struct or match_catalog, got {action!r}.")
        return self._with(df)

    def drop_null_fields(self, transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        """Drop the fields that are null in every record."""
        from pyspark.sql import functions as F  # noqa: N812

        if not self._df.columns:
            return self
        counts = self._df.agg(*(F.count(F.col(f"`{c}`")).alias(f"c{i}") for i, c in enumerate(self._df.columns)))
        row = counts.collect()[0]
        empty = [c for i, c in enumerate(self._df.columns) if row[f"c{i}"] == 0]
        return self._with(self._df.drop(*empty))

    def filter(self, f: Callable[[DynamicRecord], bool], transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        rdd = self._df.rdd.filter(lambda row: bool(f(_record(row))))
        return self._with(self._df.sparkSession.createDataFrame(rdd, self._df.schema))

    def map(self, f: Callable[[DynamicRecord], dict], transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        """Apply `f` to every record; the new frame's schema is inferred from what `f` returns."""
        from pyspark.sql import Row

        rdd = self._df.rdd.map(lambda row: Row(**dict(f(_record(row)))))
        if rdd.isEmpty():
            return self
        return self._with(self._df.sparkSession.createDataFrame(rdd, samplingRatio=None))

    def join(self, paths1: list[str], paths2: list[str], frame2: DynamicFrame, transformation_ctx: str = "",
             **_: Any) -> DynamicFrame:
        left, right = self._df, frame2.toDF()
        condition = [_col(left, a) == _col(right, b) for a, b in zip(paths1, paths2, strict=True)]
        return self._with(left.join(right, condition, "inner"))

    def relationalize(self, root_table_name: str, staging_path: str = "", options: dict | None = None,
                      transformation_ctx: str = "", **_: Any) -> DynamicFrameCollection:
        from awsglue.relationalize import relationalize

        frames = relationalize(self._df, root_table_name)
        return DynamicFrameCollection({name: self._with(df, name) for name, df in frames.items()}, self.glue_ctx)

    def unnest(self, transformation_ctx: str = "", **_: Any) -> DynamicFrame:
        from awsglue.relationalize import flatten_structs

        return self._with(flatten_structs(self._df))


def _replace(df: Any, path: str, column: Any) -> Any:
    """`df` with the field at `path` (top-level or nested) replaced by `column`."""
    if path in df.columns or "." not in path:
        return df.withColumn(path, column)
    parent, _, leaf = path.rpartition(".")
    return df.withColumn(parent.split(".")[0], _struct_with(df, parent, leaf, column))


def _struct_with(df: Any, parent: str, leaf: str, column: Any) -> Any:
    parent_col = _col(df, parent)
    return _rebuild(df, parent.split("."), parent_col.withField(leaf, column))


def _drop_nested(df: Any, parent: str, leaf: str) -> Any:
    return _rebuild(df, parent.split("."), _col(df, parent).dropFields(leaf))


def _rebuild(df: Any, parts: list[str], new_inner: Any) -> Any:
    """The top-level struct column of `parts` with the struct at `parts` replaced by `new_inner`."""
    if len(parts) == 1:
        return new_inner
    top = _col(df, parts[0])
    return top.withField(".".join(parts[1:]), new_inner)


def _spark_type(glue_type: str) -> str:
    """Glue's type names as Spark's: most are the same; a few Glue spellings differ."""
    aliases = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint", "choice": "string",
               "null": "string"}
    return aliases.get(glue_type.lower(), glue_type)


class DynamicFrameCollection:
    """Named DynamicFrames, as Relationalize returns them."""

    def __init__(self, dynamic_frames: dict[str, DynamicFrame], glue_ctx: Any):
        self._frames = dict(dynamic_frames)
        self.glue_ctx = glue_ctx

    def __getitem__(self, key: str) -> DynamicFrame:
        return self._frames[key]

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def keys(self) -> list[str]:
        return list(self._frames)

    def values(self) -> list[DynamicFrame]:
        return list(self._frames.values())

    def select(self, key: str, transformation_ctx: str = "") -> DynamicFrame:
        return self._frames[key]

    def map(self, callable: Callable[[DynamicFrame, str], DynamicFrame], transformation_ctx: str = "") -> DynamicFrameCollection:  # noqa: A002
        return DynamicFrameCollection({k: callable(v, transformation_ctx) for k, v in self._frames.items()},
                                      self.glue_ctx)
