"""Run a recipe: check it against the input's schema, fit it on the training rows, write the channels.

Outputs, under one folder (or S3 prefix): `train/`, `validation/`, `test/` (CSV with the label first and no
header, or recordIO-protobuf), `transformer/transformer.json` (the fitted artifact), `summary.json`, and any
files a step leaves (t-SNE's `tsne/`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sagelab.profiling.source import data_files, guess_format, to_arrow
from sagelab.recipes.recipe import Recipe
from sagelab.recipes.spec import BOOLEAN, DATETIME, NUMERIC, STRING, RecipeError, Schema
from sagelab.recipes.step import FitContext, kind_of
from sagelab.recipes.transformer import RecipeTransformer, coerce

CHANNELS = ("train", "validation", "test")
TRANSFORMER_FILE = "transformer/transformer.json"


@dataclasses.dataclass
class PrepareResult:
    rows: dict[str, int]
    feature_columns: list[str]
    files: list[Path]
    transformer: RecipeTransformer


def arrow_kind(data_type: pa.DataType) -> str:
    if pa.types.is_boolean(data_type):
        return BOOLEAN
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return NUMERIC
    if pa.types.is_temporal(data_type):
        return DATETIME
    return STRING


def input_schema(source: Any) -> Schema:
    """The input's columns and kinds without reading its rows (Parquet metadata; CSV/JSON: DuckDB's sniffer,
    which looks at the first rows only)."""
    if isinstance(source, pd.DataFrame):
        return Schema({c: kind_of(source[c]) for c in source.columns})
    import duckdb

    files = [f for p in (source if isinstance(source, (list, tuple)) else [source]) for f in data_files(Path(p))]
    fmt = guess_format(files[0])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(files[0])
        return Schema({f.name: arrow_kind(f.type) for f in schema})
    con = duckdb.connect()
    try:
        relation = (con.read_json([str(f) for f in files]) if fmt == "json"
                    else con.read_csv([str(f) for f in files], union_by_name=True))
        arrow_schema = relation.limit(0).to_arrow_table().schema
    except duckdb.Error as exc:
        raise RecipeError(f"could not read the input's columns: {exc}") from None
    finally:
        con.close()
    return Schema({f.name: arrow_kind(f.type) for f in arrow_schema})


def load_frame(source: Any, kinds: dict[str, str]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    else:
        frame = to_arrow(source).to_pandas(date_as_object=False)
    return coerce(frame, kinds)


def fit_recipe(recipe: Recipe, source: Any, *, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, RecipeTransformer,
                                                                      dict[str, bytes]]:
    """Check, load, split and fit; returns (transformed frame, partition per row, transformer, extra files)."""
    schema = input_schema(source)
    recipe.check(schema)  # every column error surfaces here, before a row is read
    frame = load_frame(source, schema.kinds)
    split = recipe.split
    try:
        parts = split.assign(frame, recipe.target) if split else pd.Series("train", index=frame.index)
    except ValueError as exc:  # e.g. a class too small to stratify
        raise RecipeError(f"{split.at}: {exc}") from exc
    ctx = FitContext(target=recipe.target, seed=split.seed if split else seed)
    fitted = []
    for step in recipe.steps:
        train = frame[parts.loc[frame.index] == "train"]
        try:
            params = step.fit(train, ctx)
            frame = step.apply(params, frame)
        except (ValueError, TypeError, ArithmeticError) as exc:  # scikit-learn's and pandas' complaints
            raise RecipeError(f"{step.at}: {exc}") from exc
        if not step.training_only:
            fitted.append((step, params))
    parts = parts.loc[frame.index]
    features = [c for c in frame.columns if c != recipe.target]
    not_numeric = [c for c in features if kind_of(frame[c]) not in (NUMERIC, BOOLEAN)]
    if not_numeric:
        raise RecipeError(f"after the last step, column(s) {', '.join(map(repr, not_numeric))} are not numeric; "
                          "drop them or encode them.")
    transformer = RecipeTransformer(input_columns=schema.kinds, target=recipe.target, steps=fitted,
                                    feature_columns=features)
    return frame, parts, transformer, ctx.extras


def prepare(recipe: Recipe, source: Any, output: Path) -> PrepareResult:
    frame, parts, transformer, extras = fit_recipe(recipe, source)
    target = recipe.target
    if target is not None:
        if kind_of(frame[target]) not in (NUMERIC, BOOLEAN):
            raise RecipeError(f"the target {target!r} is not numeric after the last step; map it to numbers "
                              "(ordinal or binary step on the target).")
        missing = int(frame[target].isna().sum())
        if missing:
            raise RecipeError(f"the target {target!r} is missing in {missing} rows; add "
                              f'{{"step": "drop_missing", "columns": ["{target}"]}} before the split.')
    files, rows = [], {}
    for channel in CHANNELS:
        part = frame[parts == channel]
        rows[channel] = len(part)
        if part.empty:
            continue
        x = part[transformer.feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)
        y = part[target].to_numpy(dtype=np.float64) if target is not None else None
        files.append(_write_channel(output / channel, channel, x, y, recipe.output_format))
    files.append(transformer.save(output / TRANSFORMER_FILE))
    for name, payload in extras.items():
        path = output / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        files.append(path)
    summary = {"rows": rows, "target": target, "feature_columns": transformer.feature_columns,
               "output_format": recipe.output_format, "label_first": target is not None}
    (output / "summary.json").write_text(json.dumps(summary, indent=1))
    files.append(output / "summary.json")
    return PrepareResult(rows=rows, feature_columns=transformer.feature_columns, files=files,
                         transformer=transformer)


def _write_channel(folder: Path, channel: str, x: np.ndarray, y: np.ndarray | None, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "recordio-protobuf":
        try:
            from sagelab.algorithms.first_party.recordio import write_matrix
        except ImportError:
            raise RecipeError("output_format 'recordio-protobuf' needs "
                              "sagelab.algorithms.first_party.recordio, which this build lacks; "
                              "use 'csv'.") from None
        path = folder / f"{channel}.recordio"
        path.write_bytes(write_matrix(np.nan_to_num(x.astype(np.float32)), y))
        return path
    path = folder / f"{channel}.csv"
    table = pd.DataFrame(np.column_stack([y, x]) if y is not None else x)
    table.to_csv(path, header=False, index=False, na_rep="")
    return path
