"""Cleaning steps: choose columns, remove duplicates, standardise dates, handle missing values and outliers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sagelab.recipes.spec import BOOLEAN, DATETIME, NUMERIC, STRING, Fields, Schema
from sagelab.recipes.step import FitContext, Step, array, kind_of, numeric_matrix, to_json


class DropColumns(Step):
    kind = "drop_columns"

    def parse(self, f: Fields) -> None:
        self.columns = f.columns(required=True)

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        if target in self.columns:
            raise self.error(f"cannot drop the target column {target!r}.")
        for c in self.columns:
            schema.kinds.pop(c, None)

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[c for c in params["columns"] if c in frame.columns])


class SelectColumns(Step):
    """Keep only the listed columns (and the target, which is always kept)."""

    kind = "select_columns"

    def parse(self, f: Fields) -> None:
        self.columns = f.columns(required=True)

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        keep = set(self.columns) | {target}
        schema.kinds = {c: k for c, k in schema.kinds.items() if c in keep}
        schema.open_prefixes = []

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        keep = self.resolve(frame, ctx.target)
        return {"columns": keep, "target": ctx.target}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        keep = list(params["columns"])
        if params["target"] in frame.columns and params["target"] not in keep:
            keep.insert(0, params["target"])
        return frame[keep]


class Deduplicate(Step):
    kind = "deduplicate"
    training_only = True

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.keep = f.choice("keep", ("first", "last"), "first")

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        return {"columns": self.columns}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame.duplicated(subset=params["columns"], keep=self.keep)]


#: Tried in order when a recipe names no formats: ISO first, then the common day- and month-first forms.
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y",
                        "%d.%m.%Y", "%d-%m-%Y", "%b %d, %Y", "%d %b %Y", "%B %d, %Y", "%d %B %Y", "%Y%m%d")
DATE_FEATURES = ("year", "month", "day", "weekday", "dayofyear", "quarter")
_DATE_ACCESSORS = {"weekday": "day_of_week", "dayofyear": "day_of_year"}


class ParseDates(Step):
    """Parse a column written in several formats; write it back as ISO dates and add calendar features."""

    kind = "parse_dates"

    def parse(self, f: Fields) -> None:
        self.column = f.column()
        self.formats = f.get("formats", list, list(DEFAULT_DATE_FORMATS))
        if not self.formats or not all(isinstance(x, str) and "%" in x for x in self.formats):
            raise f.error(f"field 'formats' must be a list of strptime formats such as '%Y-%m-%d', got "
                          f"{self.formats!r}.")
        self.features = f.get("features", list, ["year", "month", "day", "weekday"])
        unknown = [x for x in self.features if x not in DATE_FEATURES]
        if unknown:
            raise f.error(f"unknown date feature {unknown[0]!r}; choose from {', '.join(DATE_FEATURES)}.")
        self.drop = f.get("drop", bool, False)

    def named_columns(self) -> list[str]:
        return [self.column]

    def check(self, schema: Schema, target: str | None) -> None:
        schema.require(self.at, [self.column], (STRING, DATETIME))
        for feature in self.features:
            schema.add(self.at, f"{self.column}_{feature}", NUMERIC)
        if self.drop:
            del schema.kinds[self.column]
        else:
            schema.kinds[self.column] = STRING

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        return {}

    def parse_values(self, series: pd.Series) -> pd.Series:
        if kind_of(series) == DATETIME:
            return pd.to_datetime(series)
        text = series.astype("string").str.strip()
        parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
        for fmt in self.formats:
            todo = parsed.isna() & text.notna()
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        return parsed

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        parsed = self.parse_values(frame[self.column])
        frame = frame.copy()
        for feature in self.features:
            values = getattr(parsed.dt, _DATE_ACCESSORS.get(feature, feature))
            frame[f"{self.column}_{feature}"] = values.astype("float64")
        if self.drop:
            return frame.drop(columns=[self.column])
        frame[self.column] = parsed.dt.strftime("%Y-%m-%d").astype(object).where(parsed.notna(), None)
        return frame


class DropMissing(Step):
    """Drop the rows missing any of the columns (training only), or the columns missing too often."""

    kind = "drop_missing"

    def parse(self, f: Fields) -> None:
        self.axis = f.choice("axis", ("rows", "columns"), "rows")
        self.columns = f.columns()
        self.threshold = f.number("threshold", 0.5, low=0.0, high=1.0)
        if self.axis == "rows" and "threshold" in f.raw:
            raise f.error("field 'threshold' applies to axis 'columns' only.")

    @property
    def training_only(self) -> bool:  # type: ignore[override]
        return self.axis == "rows"

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        if self.axis == "columns":  # which columns go depends on the data: later steps are checked when fitted
            candidates = self.columns or [c for c in schema.kinds if c != target]
            schema.open_prefixes.extend(candidates)
            for c in candidates:
                if c != target:
                    schema.kinds.pop(c, None)

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        columns = self.columns or list(frame.columns)
        if self.axis == "rows":
            return {"columns": columns}
        share = frame[columns].isna().mean()
        dropped = [c for c in columns if share[c] > self.threshold and c != ctx.target]
        return {"dropped": dropped}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        if self.axis == "rows":
            return frame.dropna(subset=params["columns"])
        return frame.drop(columns=[c for c in params["dropped"] if c in frame.columns])


IMPUTE_STRATEGIES = ("mean", "median", "mode", "zero", "constant", "regression")


class Impute(Step):
    """Fill missing values: mean, median, mode, zero, a constant, or a linear regression on other columns."""

    kind = "impute"

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.strategy = f.choice("strategy", IMPUTE_STRATEGIES, "mean")
        self.value = f.get("value", (int, float, str, bool), required=self.strategy == "constant")
        self.predictors = f.columns("predictors", required=self.strategy == "regression")
        self.indicator = f.get("indicator", bool, False)

    @property
    def default_kinds(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.strategy in ("mean", "median", "zero", "regression"):
            return (NUMERIC, BOOLEAN)
        return (NUMERIC, BOOLEAN, STRING)

    def named_columns(self) -> list[str]:
        return list(self.columns or []) + list(self.predictors or [])

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        if self.indicator:
            for c in self.columns or []:
                schema.add(self.at, f"{c}_missing", NUMERIC)

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        from sklearn.impute import SimpleImputer

        columns = self.resolve(frame, ctx.target)
        if self.strategy == "regression":
            return {"columns": columns, "models": {c: self._fit_regression(frame, c) for c in columns}}
        strategy = {"mode": "most_frequent", "zero": "constant"}.get(self.strategy, self.strategy)
        fill = 0 if self.strategy == "zero" else self.value
        if self.strategy in ("mean", "median", "zero"):
            data = numeric_matrix(self, frame, columns)
        else:
            data = frame[columns].astype(object).where(frame[columns].notna(), np.nan).to_numpy()
        imputer = SimpleImputer(strategy=strategy, fill_value=fill, keep_empty_features=True).fit(data)
        return {"columns": columns, "values": to_json(imputer.statistics_)}

    def _fit_regression(self, frame: pd.DataFrame, column: str) -> dict[str, Any]:
        from sklearn.linear_model import LinearRegression

        predictors = [p for p in self.predictors if p != column]
        x = numeric_matrix(self, frame, predictors)
        y = numeric_matrix(self, frame, [column])[:, 0]
        rows = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
        if rows.sum() < 2:
            raise self.error(f"column {column!r} has fewer than 2 training rows with it and every predictor present.")
        model = LinearRegression().fit(x[rows], y[rows])
        return {"predictors": predictors, "coef": to_json(model.coef_), "intercept": float(model.intercept_),
                "predictor_means": to_json(np.nanmean(x, axis=0))}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        columns = params["columns"]
        if self.indicator:
            for c in columns:
                frame[f"{c}_missing"] = frame[c].isna().astype("float64")
        if self.strategy == "regression":
            for c in columns:
                model = params["models"][c]
                missing = frame[c].isna().to_numpy()
                if missing.any():
                    x = frame.loc[missing, model["predictors"]].to_numpy(dtype=np.float64, na_value=np.nan)
                    x = np.where(np.isnan(x), array(model["predictor_means"]), x)
                    frame.loc[missing, c] = x @ array(model["coef"]) + model["intercept"]
            return frame
        for c, value in zip(columns, params["values"], strict=True):
            if value is not None:
                frame[c] = frame[c].fillna(value) if kind_of(frame[c]) == STRING else frame[c].astype(
                    "float64").fillna(float(value))
        return frame


class Outliers(Step):
    """Clip to, or drop rows outside, bounds learnt from the training rows: IQR fences or mean ± k·std."""

    kind = "outliers"
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.method = f.choice("method", ("iqr", "zscore"), "iqr")
        self.factor = f.number("factor", 1.5 if self.method == "iqr" else 3.0, low=0.0)
        self.action = f.choice("action", ("clip", "drop"), "clip")

    @property
    def training_only(self) -> bool:  # type: ignore[override]
        return self.action == "drop"

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        columns = self.resolve(frame, ctx.target)
        x = numeric_matrix(self, frame, columns)
        if self.method == "iqr":
            q1, q3 = np.nanpercentile(x, 25, axis=0), np.nanpercentile(x, 75, axis=0)
            low, high = q1 - self.factor * (q3 - q1), q3 + self.factor * (q3 - q1)
        else:
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0, ddof=1)
            low, high = mean - self.factor * std, mean + self.factor * std
        return {"columns": columns, "low": to_json(low), "high": to_json(high)}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        columns = params["columns"]
        low, high = array(params["low"]), array(params["high"])
        x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        if self.action == "drop":
            outside = ((x < low) | (x > high)).any(axis=1)
            return frame[~outside]
        frame = frame.copy()
        frame[columns] = np.clip(x, low, high)
        return frame
