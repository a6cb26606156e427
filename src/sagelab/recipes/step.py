"""What every recipe step is: parsed from its JSON, checked against the schema, fitted, applied.

A step is fitted on the training rows only and returns its fitted state as JSON-ready `params`; `apply`
uses nothing but the step's spec and those params, so a reloaded artifact transforms new rows exactly as
the recipe run did. Steps marked `training_only` (row filters, the split, t-SNE) shape the training data
and are skipped when new rows are transformed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from sagelab.recipes.spec import BOOLEAN, DATETIME, NUMERIC, STRING, Fields, RecipeError, Schema, where


def kind_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return BOOLEAN
    if pd.api.types.is_numeric_dtype(series):
        return NUMERIC
    if pd.api.types.is_datetime64_any_dtype(series):
        return DATETIME
    return STRING


@dataclasses.dataclass
class FitContext:
    target: str | None
    #: Files a step leaves beside the channels (t-SNE's embedding and plot), name -> bytes.
    extras: dict[str, bytes] = dataclasses.field(default_factory=dict)
    seed: int = 0


class Step:
    kind: ClassVar[str]
    training_only: ClassVar[bool] = False
    #: Kinds of the columns the step works on when it lists none (None: the step names its columns).
    default_kinds: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, fields: Fields):
        self.index = fields.index
        self.spec = dict(fields.raw)
        self.columns: list[str] | None = None
        self.parse(fields)
        fields.done()

    @property
    def at(self) -> str:
        return where(self.index, self.kind)

    def error(self, message: str) -> RecipeError:
        return RecipeError(f"{self.at}: {message}")

    def parse(self, fields: Fields) -> None:  # pragma: no cover - every step overrides
        raise NotImplementedError

    def named_columns(self) -> list[str]:
        return list(self.columns or [])

    def check(self, schema: Schema, target: str | None) -> None:
        """Raise RecipeError if the step cannot run on `schema`; update `schema` to what it leaves."""
        schema.require(self.at, self.named_columns(), self.default_kinds)

    def resolve(self, frame: pd.DataFrame, target: str | None) -> list[str]:
        """The step's columns: as listed, or every feature column of the kinds it takes."""
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise self.error(f"column {missing[0]!r} is not in the data at this step (an earlier step removed "
                                 "it or did not create it).")
            return list(self.columns)
        return [c for c in frame.columns if c != target and kind_of(frame[c]) in (self.default_kinds or ())]

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        return {"columns": self.resolve(frame, ctx.target)}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError


def numeric_matrix(step: Step, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    for c in columns:
        if kind_of(frame[c]) not in (NUMERIC, BOOLEAN):
            raise step.error(f"column {c!r} is {kind_of(frame[c])}, expected a numeric column.")
    return frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)


def require_complete(step: Step, frame: pd.DataFrame, columns: list[str]) -> None:
    for c in columns:
        missing = int(frame[c].isna().sum())
        if missing:
            raise step.error(f"column {c!r} has {missing} missing values; add an impute or drop_missing step "
                             "before this one.")


def to_json(value: Any) -> Any:
    """Fitted NumPy state as plain JSON (lists of floats; NaN as None)."""
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()] if value.dtype == object else _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def array(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in np.ravel(values)] if np.ndim(values) <= 1 else
                    [[np.nan if v is None else v for v in row] for row in values], dtype=np.float64)

