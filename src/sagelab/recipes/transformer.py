"""The fitted recipe as a safe artifact: JSON holding each step's spec and fitted parameters (no pickle).

`RecipeTransformer.load(path).transform(rows)` turns raw rows (without the target) into the feature
matrix the channels were written from, identically, in any process. It is meant to be the first container
of an inference pipeline: `transform_csv` takes and returns the bodies such a container exchanges.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagelab.recipes.recipe import parse_step
from sagelab.recipes.spec import BOOLEAN, DATETIME, NUMERIC, RecipeError
from sagelab.recipes.step import Step

FORMAT = "sagelab-recipe-transformer"
VERSION = 1


@dataclasses.dataclass
class RecipeTransformer:
    #: The input's columns and kinds, in order (the target included, when the data had it).
    input_columns: dict[str, str]
    target: str | None
    steps: list[tuple[Step, dict[str, Any]]]
    feature_columns: list[str]

    @property
    def feature_inputs(self) -> list[str]:
        return [c for c in self.input_columns if c != self.target]

    # --- persistence ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "target": self.target,
                "input_columns": [{"name": n, "kind": k} for n, k in self.input_columns.items()],
                "steps": [{"spec": step.spec, "params": params} for step, params in self.steps],
                "feature_columns": self.feature_columns}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))
        return path

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RecipeTransformer:
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise RecipeError(f"not a {FORMAT} version {VERSION} document (format {document.get('format')!r}, "
                              f"version {document.get('version')!r}).")
        steps = [(parse_step(i, entry["spec"]), entry["params"]) for i, entry in enumerate(document["steps"])]
        return cls(input_columns={c["name"]: c["kind"] for c in document["input_columns"]},
                   target=document["target"], steps=steps, feature_columns=list(document["feature_columns"]))

    @classmethod
    def load(cls, path: Path) -> RecipeTransformer:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # --- transforming ---------------------------------------------------------------------------------
    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Apply every fitted step; returns the feature columns (and the target, when the frame has it)."""
        missing = [c for c in self.feature_inputs if c not in frame.columns]
        if missing:
            raise RecipeError(f"the rows lack input column(s) {', '.join(map(repr, missing))}.")
        frame = coerce(frame, self.input_columns)
        for step, params in self.steps:
            if self.target is not None and self.target in step.named_columns() and self.target not in frame.columns:
                continue  # a step on the target: new rows have none
            frame = step.apply(params, frame)
        keep = self.feature_columns + ([self.target] if self.target in frame.columns else [])
        return frame[keep]

    def transform(self, rows: Any) -> np.ndarray:
        """Rows as a DataFrame, a list of dicts, or a list of lists in input column order (the target may be
        left out); returns the float64 feature matrix."""
        frame = self.transform_frame(self.as_frame(rows))
        return frame[self.feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)

    def as_frame(self, rows: Any) -> pd.DataFrame:
        if isinstance(rows, pd.DataFrame):
            return rows
        rows = list(rows)
        if rows and isinstance(rows[0], Mapping):
            return pd.DataFrame.from_records(rows)
        width = {len(r) for r in rows}
        for columns in (self.feature_inputs, list(self.input_columns)):
            if width == {len(columns)}:
                return pd.DataFrame([list(r) for r in rows], columns=columns)
        raise RecipeError(f"each row must have {len(self.feature_inputs)} values ({', '.join(self.feature_inputs)}); "
                          f"got rows of {sorted(width)} values.")

    def transform_csv(self, body: bytes) -> bytes:
        """text/csv in (no header, input column order), text/csv out (the features, no header)."""
        raw = pd.read_csv(io.BytesIO(body), header=None, dtype=str, keep_default_na=False, na_values=[""])
        features = self.transform(raw.itertuples(index=False, name=None))
        out = io.StringIO()
        pd.DataFrame(features).to_csv(out, header=False, index=False, na_rep="")
        return out.getvalue().encode()


def coerce(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Give new rows the kinds the recipe was fitted on (numbers from text, dates from text, ...)."""
    frame = frame.copy()
    for column, kind in kinds.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        if kind == NUMERIC:
            frame[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == BOOLEAN:
            frame[column] = values.map(_truth).astype("float64")
        elif kind == DATETIME:
            frame[column] = pd.to_datetime(values, errors="coerce")
        else:
            frame[column] = values.astype(object).where(values.notna(), None)
            frame[column] = frame[column].map(lambda v: v if v is None else str(v))
    return frame


def _truth(value: Any) -> float:
    if value is None or (isinstance(value, float) and value != value):
        return np.nan
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "t", "yes", "y", "1"):
            return 1.0
        if text in ("false", "f", "no", "n", "0"):
            return 0.0
        return np.nan
    return float(bool(value))

