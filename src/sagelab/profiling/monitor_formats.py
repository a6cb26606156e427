"""A profile as Model Monitor's baseline files: `statistics.json` and `constraints.json`.

The shapes follow the documented schemas of SageMaker Model Monitor's prebuilt container, so the
monitoring jobs can read a sagelab baseline as they read one made on AWS. Two choices had to be made
where the container's internals are not documented:

- `std_dev` is the population standard deviation (what the container's Deequ analyzers compute).
- The KLL `sketch` holds one compactor: up to 2048 order statistics of the column taken at evenly spaced
  ranks, which a KLL reader turns into the same quantiles (within one rank step) as the full data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sagelab.profiling.model import Attribute, Profile

#: Columns with at most this many distinct values get a `string_constraints.domains` list.
DOMAIN_LIMIT = 20

MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


def inferred_type(attribute: Attribute) -> str:
    if attribute.numeric is not None:
        return "Integral" if attribute.is_integral else "Fractional"
    if attribute.count == 0:
        return "Unknown"
    return "String"


def _common(attribute: Attribute) -> dict[str, int]:
    return {"num_present": attribute.count, "num_missing": attribute.missing}


def _feature_statistics(attribute: Attribute) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": attribute.name, "inferred_type": inferred_type(attribute)}
    stats = attribute.numeric
    if stats is None:
        feature["string_statistics"] = {
            "common": _common(attribute),
            "distinct_count": attribute.distinct,
            "distribution": {"categorical": {"buckets": [
                {"value": str(vc.value), "count": vc.count} for vc in attribute.most_frequent]}},
        }
        return feature
    n = attribute.count
    population_std = stats.std * math.sqrt((n - 1) / n) if stats.std is not None else 0.0
    edges, counts = stats.buckets.edges, stats.buckets.counts
    feature["numerical_statistics"] = {
        "common": _common(attribute),
        "mean": stats.mean,
        "sum": stats.sum,
        "std_dev": population_std,
        "min": stats.min,
        "max": stats.max,
        "distribution": {"kll": {
            "buckets": [{"lower_bound": edges[i], "upper_bound": edges[i + 1], "count": float(counts[i])}
                        for i in range(len(counts))],
            "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [stats.sketch]},
        }},
    }
    return feature


def statistics(profile: Profile) -> dict[str, Any]:
    return {"version": 0.0, "dataset": {"item_count": profile.overview.rows},
            "features": [_feature_statistics(a) for a in profile.attributes]}


def _feature_constraints(attribute: Attribute) -> dict[str, Any]:
    total = attribute.count + attribute.missing
    feature: dict[str, Any] = {"name": attribute.name, "inferred_type": inferred_type(attribute),
                               "completeness": attribute.count / total if total else 0.0}
    if attribute.numeric is not None:
        feature["num_constraints"] = {"is_non_negative": attribute.numeric.min >= 0}
    elif 0 < attribute.distinct <= DOMAIN_LIMIT and attribute.distinct == len(attribute.most_frequent):
        feature["string_constraints"] = {"domains": sorted(str(vc.value) for vc in attribute.most_frequent)}
    return feature


def constraints(profile: Profile) -> dict[str, Any]:
    return {"version": 0.0, "features": [_feature_constraints(a) for a in profile.attributes],
            "monitoring_config": json.loads(json.dumps(MONITORING_CONFIG))}


def write_baseline(profile: Profile, folder: Path) -> tuple[Path, Path]:
    """Write statistics.json and constraints.json into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stats_path, constraints_path = folder / "statistics.json", folder / "constraints.json"
    stats_path.write_text(json.dumps(statistics(profile), indent=2, allow_nan=False))
    constraints_path.write_text(json.dumps(constraints(profile), indent=2, allow_nan=False))
    return stats_path, constraints_path
