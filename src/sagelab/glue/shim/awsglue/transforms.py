"""Glue's transform classes (`from awsglue.transforms import *`): each `apply` calls the DynamicFrame method."""

from __future__ import annotations

from typing import Any

from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection

__all__ = ["ApplyMapping", "DropFields", "DropNullFields", "Filter", "GlueTransform", "Join", "Map",
           "Relationalize", "RenameField", "ResolveChoice", "SelectFields", "Unbox", "UnnestFrame"]


class GlueTransform:
    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        return cls()(*args, **kwargs)

    @classmethod
    def name(cls) -> str:
        return cls.__name__


class ApplyMapping(GlueTransform):
    def __call__(self, frame: DynamicFrame, mappings: list[tuple], case_sensitive: bool = False,
                 transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame.apply_mapping(mappings, case_sensitive, transformation_ctx)


class ResolveChoice(GlueTransform):
    def __call__(self, frame: DynamicFrame, specs: list[tuple[str, str]] | None = None, choice: str = "",
                 database: str | None = None, table_name: str | None = None, transformation_ctx: str = "",
                 **kwargs: Any) -> DynamicFrame:
        return frame.resolveChoice(specs, choice, database, table_name, transformation_ctx)


class DropNullFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame.drop_null_fields(transformation_ctx)


class Relationalize(GlueTransform):
    def __call__(self, frame: DynamicFrame, staging_path: str = "", name: str = "roottable",
                 options: dict | None = None, transformation_ctx: str = "", **kwargs: Any) -> DynamicFrameCollection:
        return frame.relationalize(name, staging_path, options, transformation_ctx)


class SelectFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, paths: list[str], transformation_ctx: str = "", **kwargs: Any):
        return frame.select_fields(paths, transformation_ctx)


class DropFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, paths: list[str], transformation_ctx: str = "", **kwargs: Any):
        return frame.drop_fields(paths, transformation_ctx)


class RenameField(GlueTransform):
    def __call__(self, frame: DynamicFrame, old_name: str, new_name: str, transformation_ctx: str = "",
                 **kwargs: Any) -> DynamicFrame:
        return frame.rename_field(old_name, new_name, transformation_ctx)


class Filter(GlueTransform):
    def __call__(self, frame: DynamicFrame, f: Any, transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame.filter(f, transformation_ctx)


class Map(GlueTransform):
    def __call__(self, frame: DynamicFrame, f: Any, transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame.map(f, transformation_ctx)


class Join(GlueTransform):
    def __call__(self, frame1: DynamicFrame, frame2: DynamicFrame, keys1: list[str], keys2: list[str],
                 transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame1.join(keys1, keys2, frame2, transformation_ctx)


class UnnestFrame(GlueTransform):
    def __call__(self, frame: DynamicFrame, transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        return frame.unnest(transformation_ctx)


class Unbox(GlueTransform):
    """Parse a string field holding JSON into a struct (`format="json"`; Spark infers its schema)."""

    def __call__(self, frame: DynamicFrame, path: str, format: str = "json", transformation_ctx: str = "",  # noqa: A002
                 **kwargs: Any) -> DynamicFrame:
        from pyspark.sql import functions as F  # noqa: N812

        if format != "json":
            raise ValueError(f"Unbox format must be 'json' here, got {format!r}.")
        df = frame.toDF()
        sample = [r[0] for r in df.select(F.col(f"`{path}`")).where(F.col(f"`{path}`").isNotNull()).limit(100).collect()]
        schema = F.schema_of_json(F.lit(sample[0])) if sample else "string"
        return DynamicFrame(df.withColumn(path, F.from_json(F.col(f"`{path}`"), schema)), frame.glue_ctx, frame.name)
