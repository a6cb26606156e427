"""Random Cut Forest's hyperparameter schema: the names, defaults and valid values SageMaker's
`randomcutforest` accepts.
"""

from __future__ import annotations

import json
from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

EVAL_METRICS = ("accuracy", "precision_recall_fscore")


def _eval_metrics(text: Any) -> list[str]:
    """`["accuracy", "precision_recall_fscore"]` (JSON, as the SDK sends lists) or a comma-separated list."""
    raw = str(text).strip()
    try:
        value = json.loads(raw)
    except ValueError:
        value = [part.strip().strip("'\"") for part in raw.strip("[]").split(",") if part.strip()]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"Hyperparameter 'eval_metrics': expected a list of {', '.join(EVAL_METRICS)} such as "
                              f'["accuracy", "precision_recall_fscore"], got {raw!r}.')
    unknown = [v for v in value if v not in EVAL_METRICS]
    if unknown:
        raise ValidationError(f"Hyperparameter 'eval_metrics': {unknown[0]!r} is not a metric; expected a list of "
                              f"{', '.join(EVAL_METRICS)}, got {raw!r}.")
    return list(dict.fromkeys(value))


def _check(values: dict[str, Any]) -> None:
    values["eval_metrics"] = _eval_metrics(values["eval_metrics"])


def _schema() -> HyperparameterSchema:
    params = [
        Hyperparameter("feature_dim", "int", required=True, min=1, max=10000, help="Number of features."),
        Hyperparameter("eval_metrics", "str", '["accuracy", "precision_recall_fscore"]',
                       help="Metrics for a labelled test channel: a list of accuracy, precision_recall_fscore."),
        Hyperparameter("num_samples_per_tree", "int", 256, min=1, max=2048),
        Hyperparameter("num_trees", "int", 100, min=50, max=1000),
    ]
    return HyperparameterSchema(params=params, checks=(_check,))


SCHEMA = _schema()
