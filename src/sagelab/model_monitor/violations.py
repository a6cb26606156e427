"""Compare a window's statistics with the baseline: `constraint_violations.json` and the drift distances.

The checks are the prebuilt container's, with its documented check types and thresholds
(constraints.json's `monitoring_config`):

- `data_type_check`: fewer than `datatype_check_threshold` of a feature's values have the baseline's type
  (an Integral feature holding fractions, a numeric one holding strings);
- `completeness_check`: a feature is less complete than its baseline `completeness`;
- `categorical_values_check`: fewer than `domain_content_threshold` of a string feature's values are in
  its baseline `domains`;
- `baseline_drift_check`: the distance between baseline and current distributions passes
  `comparison_threshold` (numeric: the L-infinity distance between the two CDFs, the baseline's from its
  KLL sketch; categorical: `LInfinity` between the category frequencies, against
  `categorical_comparison_threshold`);
- `missing_column_check` / `extra_column_check`: a baseline feature absent from the data, or the reverse.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclasses.dataclass(frozen=True)
class Violation:
    feature_name: str
    constraint_check_type: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _type_share(column: pa.ChunkedArray, expected: str) -> float:
    present = column.drop_null()
    if len(present) == 0 or expected in ("String", "Unknown"):
        return 1.0
    if pa.types.is_integer(column.type):
        return 1.0
    if pa.types.is_floating(column.type):
        if expected == "Fractional":
            return 1.0
        values = present.to_numpy()
        return float(np.mean(values == np.floor(values)))
    return 0.0  # strings where numbers were expected


def _baseline_cdf_points(feature: dict[str, Any]) -> np.ndarray | None:
    kll = ((feature.get("numerical_statistics") or {}).get("distribution") or {}).get("kll") or {}
    sketch = (kll.get("sketch") or {}).get("data") or []
    points = [v for part in sketch for v in part if v is not None]
    if points:
        return np.sort(np.asarray(points, dtype=float))
    buckets = kll.get("buckets") or []
    if not buckets:
        return None
    # No sketch: stand each bucket's count at its midpoint.
    mids = [(b["lower_bound"] + b["upper_bound"]) / 2 for b in buckets]
    return np.sort(np.repeat(mids, [max(0, int(round(b["count"]))) for b in buckets]).astype(float))


def numeric_distance(baseline: np.ndarray, current: np.ndarray) -> float:
    """The largest gap between the two empirical CDFs (0: same distribution, 1: disjoint)."""
    if len(baseline) == 0 or len(current) == 0:
        return 0.0
    current = np.sort(current)
    grid = np.union1d(baseline, current)
    gap = np.abs(np.searchsorted(baseline, grid, side="right") / len(baseline)
                 - np.searchsorted(current, grid, side="right") / len(current))
    return float(gap.max())


def categorical_distance(feature: dict[str, Any], column: pa.ChunkedArray) -> float:
    buckets = (((feature.get("string_statistics") or {}).get("distribution") or {}).get("categorical") or {}) \
        .get("buckets") or []
    total = sum(b["count"] for b in buckets)
    present = column.drop_null().cast(pa.string())
    if not total or len(present) == 0:
        return 0.0
    counts = {r["values"].as_py(): r["counts"].as_py() for r in pc.value_counts(present)}
    baseline = {str(b["value"]): b["count"] / total for b in buckets}
    keys = set(baseline) | set(counts)
    return float(max(abs(baseline.get(k, 0.0) - counts.get(k, 0) / len(present)) for k in keys))


def drift_distances(table: pa.Table, statistics: dict[str, Any]) -> dict[str, float]:
    """Feature -> its distance from the baseline's distribution, for the features both have."""
    distances = {}
    for feature in statistics.get("features", []):
        name = feature["name"]
        if name not in table.column_names:
            continue
        column = table[name]
        if "numerical_statistics" in feature and (pa.types.is_integer(column.type) or
                                                  pa.types.is_floating(column.type)):
            points = _baseline_cdf_points(feature)
            if points is not None:
                current = column.drop_null().to_numpy().astype(float)
                distances[name] = numeric_distance(points, current)
        elif "string_statistics" in feature:
            distances[name] = categorical_distance(feature, column)
    return distances


def _percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def check(table: pa.Table, constraints: dict[str, Any] | None, statistics: dict[str, Any] | None,
          distances: dict[str, float]) -> list[Violation]:
    config = (constraints or {}).get("monitoring_config") or {}
    found: list[Violation] = []
    baseline_features = {f["name"]: f for f in (constraints or {}).get("features", [])}
    if constraints and config.get("evaluate_constraints", "Enabled") == "Enabled":
        type_threshold = float(config.get("datatype_check_threshold", 1.0))
        domain_threshold = float(config.get("domain_content_threshold", 1.0))
        for name, feature in baseline_features.items():
            if name not in table.column_names:
                found.append(Violation(name, "missing_column_check", (
                    f"There are missing columns in current dataset. Number of columns in current dataset: "
                    f"{table.num_columns}, Number of columns in baseline constraints: {len(baseline_features)}")))
                continue
            column = table[name]
            expected = feature.get("inferred_type", "Unknown")
            share = _type_share(column, expected)
            if share < type_threshold:
                found.append(Violation(name, "data_type_check", (
                    f"Data type match requirement is not met. Expected data type: {expected}, Expected match: "
                    f"{_percent(type_threshold)}. Observed: Only {_percent(share)} of data is {expected}.")))
            completeness = 1.0 - column.null_count / len(column) if len(column) else 0.0
            if "completeness" in feature and completeness < float(feature["completeness"]) - 1e-9:
                found.append(Violation(name, "completeness_check", (
                    f"Data completeness requirement is not met. Expected: {_percent(float(feature['completeness']))}"
                    f", Observed: {_percent(completeness)}")))
            domains = (feature.get("string_constraints") or {}).get("domains")
            present = column.drop_null()
            if domains and len(present):
                inside = pc.sum(pc.is_in(present.cast(pa.string()), value_set=pa.array(domains))).as_py() or 0
                if inside / len(present) < domain_threshold:
                    found.append(Violation(name, "categorical_values_check", (
                        f"Data does not meet the categorical values requirement. Expected: "
                        f"{_percent(domain_threshold)} of values in the baseline domain, Observed: "
                        f"{_percent(inside / len(present))}")))
        for name in table.column_names:
            if baseline_features and name not in baseline_features:
                found.append(Violation(name, "extra_column_check", (
                    f"There are extra columns in current dataset. Number of columns in current dataset: "
                    f"{table.num_columns}, Number of columns in baseline constraints: {len(baseline_features)}")))
    distribution = config.get("distribution_constraints") or {}
    if statistics and distribution.get("perform_comparison", "Enabled") == "Enabled":
        numeric_threshold = float(distribution.get("comparison_threshold", 0.1))
        categorical_threshold = float(distribution.get("categorical_comparison_threshold", 0.1))
        stats_by_name = {f["name"]: f for f in statistics.get("features", [])}
        for name, distance in distances.items():
            threshold = categorical_threshold if "string_statistics" in stats_by_name[name] else numeric_threshold
            if distance > threshold:
                found.append(Violation(name, "baseline_drift_check", (
                    f"Baseline drift distance: {distance:.6g} exceeds threshold: {threshold:.6g}")))
    return found
