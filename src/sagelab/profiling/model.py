"""What a profile is: plain dataclasses that serialise to JSON with `Profile.to_dict()`."""

from __future__ import annotations

import dataclasses
from typing import Any

#: Attribute kinds, as the report shows them.
NUMERIC, CATEGORICAL, BOOLEAN, DATETIME, TEXT, EMPTY = "numeric", "categorical", "boolean", "datetime", "text", "empty"

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclasses.dataclass
class ValueCount:
    value: Any
    count: int


@dataclasses.dataclass
class Histogram:
    edges: list[float]
    counts: list[int]


@dataclasses.dataclass
class BoxStats:
    """A box plot from statistics: quartiles, whiskers at the furthest values inside the 1.5 IQR fences."""

    q1: float
    median: float
    q3: float
    whisker_low: float
    whisker_high: float
    fliers: list[float]


@dataclasses.dataclass
class NumericStats:
    mean: float
    std: float | None
    min: float
    max: float
    sum: float
    zeros: int
    negatives: int
    skewness: float | None
    kurtosis: float | None
    #: Linear interpolation between order statistics (pandas' default), keyed "5%", "25%", ...
    quantiles: dict[str, float]
    iqr: float
    histogram: Histogram
    box: BoxStats
    iqr_fences: tuple[float, float]
    outliers_iqr: int
    outliers_zscore: int
    #: Ten equal-width buckets from min to max: statistics.json's KLL buckets.
    buckets: Histogram
    #: Up to 2048 evenly spaced quantiles: the single compactor of statistics.json's KLL sketch.
    sketch: list[float]


@dataclasses.dataclass
class DatetimeStats:
    min: str
    max: str
    histogram: Histogram  # edges in seconds since the epoch


@dataclasses.dataclass
class TextStats:
    min_length: int
    mean_length: float
    max_length: int


@dataclasses.dataclass
class Attribute:
    name: str
    physical_type: str
    kind: str
    count: int
    missing: int
    distinct: int
    mode: Any
    most_frequent: list[ValueCount]
    least_frequent: list[ValueCount]
    numeric: NumericStats | None = None
    datetime: DatetimeStats | None = None
    text: TextStats | None = None

    @property
    def missing_share(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @property
    def is_integral(self) -> bool:
        return self.physical_type.startswith(("int", "uint"))


@dataclasses.dataclass
class Overview:
    rows: int
    columns: int
    duplicate_rows: int
    missing_cells: int
    memory_bytes: int
    kinds: dict[str, int]


@dataclasses.dataclass
class ClassBalance:
    target: str
    #: "classification" (classes listed) or "regression" (histogram of the target).
    problem: str
    classes: list[ValueCount]
    imbalance_ratio: float | None
    histogram: Histogram | None = None


@dataclasses.dataclass
class Correlations:
    columns: list[str]
    pearson: list[list[float | None]]
    spearman: list[list[float | None]]
    #: Rows each coefficient was computed on (all rows, or a uniform sample of big tables).
    pearson_rows: int
    spearman_rows: int


@dataclasses.dataclass
class Contingency:
    row: str
    column: str
    row_values: list[Any]
    column_values: list[Any]
    counts: list[list[int]]
    chi2: float
    p_value: float
    cramers_v: float


@dataclasses.dataclass
class ScatterSample:
    columns: list[str]
    values: list[list[float]]  # one list per column
    hue: list[Any] | None  # the target's class per point, when the target is categorical


@dataclasses.dataclass
class Alert:
    kind: str  # constant, high_cardinality, highly_correlated, imbalanced, skewed, many_missing, duplicates
    columns: list[str]
    message: str


@dataclasses.dataclass
class Profile:
    overview: Overview
    attributes: list[Attribute]
    target: str | None
    class_balance: ClassBalance | None
    correlations: Correlations | None
    contingency: list[Contingency]
    scatter: ScatterSample | None
    alerts: list[Alert]

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
