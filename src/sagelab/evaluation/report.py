"""`evaluation.json`: metrics in the shape of SageMaker's model-quality statistics and ModelMetrics reports.

    {"version": 0.0,
     "dataset": {"item_count": 57, "evaluation_time": "2026-01-01T00:00:00Z"},
     "binary_classification_metrics": {
         "confusion_matrix": {"0": {"0": 20, "1": 1}, "1": {"0": 2, "1": 34}},   # actual -> predicted -> count
         "accuracy": {"value": 0.947, "standard_deviation": 0.028},
         ...,
         "receiver_operating_characteristic_curve": {...}, "precision_recall_curve": {...}},
     "sagelab": {...how the figures were made...}}

The metrics key is `binary_classification_metrics`, `multiclass_classification_metrics` or
`regression_metrics`, so a model package's `ModelMetrics.ModelQuality.Statistics` can point at the file.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sagelab.evaluation import metrics

SECTIONS = {"BinaryClassification": "binary_classification_metrics",
            "MulticlassClassification": "multiclass_classification_metrics",
            "Regression": "regression_metrics"}


def confusion_section(y: np.ndarray, predicted: np.ndarray, labels: list[Any] | None = None) -> dict[str, Any]:
    table = metrics.confusion_matrix(y, predicted, labels)
    names = [str(label) for label in table["labels"]]
    return {actual: {name: int(count) for name, count in zip(names, row, strict=True)}
            for actual, row in zip(names, table["matrix"], strict=True)}


def build(problem_type: str, item_count: int, values: dict[str, float | None],
          spread: dict[str, float | None], *, confusion: dict[str, Any] | None = None,
          curves: dict[str, Any] | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if confusion is not None:
        section["confusion_matrix"] = confusion
    for name, value in values.items():
        section[name] = {"value": value, "standard_deviation": spread.get(name)}
    section.update(curves or {})
    return {
        "version": 0.0,
        "dataset": {"item_count": int(item_count),
                    "evaluation_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        SECTIONS[problem_type]: section,
        "sagelab": {"problem_type": problem_type, **(details or {})},
    }
