"""Relationalize: a nested frame as flat tables, the way Glue's transform lays them out.

Struct fields become top-level columns named by their path (`address.city`). An array field becomes its
own table, `<parent table>_<field path with dots as _>`, with columns `id` (the value left in the parent's
column, joining the two), `index` (the position in the array) and `<field>.val` (the element; a struct
element is flattened into `<field>.val.<subfield>` columns). Nested arrays repeat the same rule.
"""

from __future__ import annotations

from typing import Any


def flatten_structs(df: Any) -> Any:
    """`df` with every struct column, at any depth, spread into `parent.child` columns."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual alias
    from pyspark.sql.types import StructType

    while True:
        structs = [f for f in df.schema.fields if isinstance(f.dataType, StructType)]
        if not structs:
            return df
        columns = []
        for field in df.schema.fields:
            if isinstance(field.dataType, StructType):
                columns += [F.col(f"`{field.name}`.`{sub.name}`").alias(f"{field.name}.{sub.name}")
                            for sub in field.dataType.fields]
            else:
                columns.append(F.col(f"`{field.name}`"))
        df = df.select(*columns)


def relationalize(df: Any, root: str) -> dict[str, Any]:
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import ArrayType

    tables: dict[str, Any] = {}
    pending = [(root, df)]
    while pending:
        name, frame = pending.pop(0)
        frame = flatten_structs(frame)
        arrays = [f.name for f in frame.schema.fields if isinstance(f.dataType, ArrayType)]
        if arrays:
            # The ids must not change between the parent and its child tables: number the rows once.
            frame = frame.withColumn("__row", F.monotonically_increasing_id() + 1).localCheckpoint()
            for position, column in enumerate(arrays):
                key = F.col("__row") * len(arrays) + position
                child = frame.select(key.alias("id"), F.posexplode_outer(F.col(f"`{column}`")).alias(
                    "index", f"{column}.val")).where(F.col("index").isNotNull())
                pending.append((f"{name}_{column.replace('.', '_')}", child))
                frame = frame.withColumn(column, F.when(F.col(f"`{column}`").isNotNull(), key))
            frame = frame.drop("__row")
        tables[name] = frame
    return tables
