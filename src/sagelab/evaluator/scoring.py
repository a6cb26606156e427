"""Scoring a model on labelled records and measuring the result.

Predictions are asked from the model's predictor exactly as an endpoint would be asked (CSV in, JSON out:
`{"predictions": [{"score": ..., "predicted_label": ...}]}`), so the figures describe what a deployed model
answers. `measure` turns labels and predictions into the metrics of the problem type.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, InferenceError, Predictor
from sagelab.evaluation import metrics

#: Records per request to the predictor.
BATCH_ROWS = 5000


@dataclasses.dataclass
class Predictions:
    #: (n,) scores, or (n, k) class probabilities.
    scores: np.ndarray
    #: The model's own class decision, when it gives one (Linear Learner does).
    labels: np.ndarray | None = None


@dataclasses.dataclass
class Outcome:
    """What an evaluation or a cross-validation found, for its report and its pictures."""

    problem_type: str
    labels: np.ndarray
    #: The predictions the pictures show: on the test data, or out of fold for cross-validation.
    predictions: Predictions
    threshold: float
    report: dict[str, Any]
    what: str


def predict(predictor: Predictor, features: np.ndarray) -> Predictions:
    scores: list[Any] = []
    labels: list[Any] = []
    for start in range(0, len(features), BATCH_ROWS):
        buffer = io.BytesIO()
        np.savetxt(buffer, features[start:start + BATCH_ROWS], delimiter=",", fmt="%.9g")
        try:
            body, _ = predictor.invoke(buffer.getvalue(), "text/csv", "application/json")
        except InferenceError as exc:
            raise DataError(f"The model could not score the evaluation data: {exc.message}") from exc
        for record in json.loads(body)["predictions"]:
            scores.append(record["score"])
            if "predicted_label" in record:
                labels.append(record["predicted_label"])
    return Predictions(np.asarray(scores, dtype=np.float64),
                       np.asarray(labels, dtype=np.float64) if len(labels) == len(scores) else None)


def problem_type_of(algorithm_name: str, hyperparameters: dict[str, str]) -> str | None:
    """What the training hyperparameters say the model predicts, when they say it."""
    if algorithm_name == "xgboost":
        objective = hyperparameters.get("objective", "reg:squarederror")
        if objective.startswith("binary:") or objective == "reg:logistic":
            return "BinaryClassification"
        if objective.startswith("multi:"):
            return "MulticlassClassification"
        return "Regression"
    predictor_type = hyperparameters.get("predictor_type")
    return {"binary_classifier": "BinaryClassification", "multiclass_classifier": "MulticlassClassification",
            "regressor": "Regression"}.get(predictor_type or "")


def infer_problem_type(y: np.ndarray, predictions: Predictions) -> str:
    """The problem type the labels and the model's answers point to (set `problem_type` to be sure)."""
    scores = predictions.scores
    if scores.ndim == 2:
        return "MulticlassClassification"
    integral = bool(np.all(y == np.round(y)))
    if np.isin(y, (0.0, 1.0)).all() and np.all((scores >= 0) & (scores <= 1)):
        return "BinaryClassification"
    if integral and (predictions.labels is not None or np.all(scores == np.round(scores))) \
            and len(np.unique(y)) > 2:
        return "MulticlassClassification"
    return "Regression"


def class_predictions(problem_type: str, predictions: Predictions, threshold: float) -> np.ndarray | None:
    scores = predictions.scores
    if problem_type == "BinaryClassification":
        return (scores > threshold).astype(np.float64)
    if problem_type == "MulticlassClassification":
        if predictions.labels is not None:
            return predictions.labels
        return scores.argmax(axis=1).astype(np.float64) if scores.ndim == 2 else scores
    return None


def measure(problem_type: str, y: np.ndarray, predictions: Predictions, threshold: float) -> metrics.Metrics:
    scores = predictions.scores
    if problem_type == "BinaryClassification":
        if scores.ndim != 1:
            raise DataError("problem_type BinaryClassification needs one score per record, but the model gives "
                            f"{scores.shape[1]} per record.")
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError("problem_type BinaryClassification needs labels 0 and 1 in the first column, found "
                            f"{_some_labels(y)}.")
        return metrics.binary_classification(y, scores, threshold=threshold)
    if problem_type == "MulticlassClassification":
        proba = scores if scores.ndim == 2 else None
        labels = list(range(scores.shape[1])) if proba is not None else None
        if proba is not None and not np.isin(y, labels).all():
            raise DataError(f"The model gives probabilities for classes 0..{len(labels) - 1}, but the labels "
                            f"include {_some_labels(y[~np.isin(y, labels)])}.")
        return metrics.multiclass_classification(y, class_predictions(problem_type, predictions, 0.5), proba,
                                                 labels=labels)
    if scores.ndim != 1:
        raise DataError("problem_type Regression needs one score per record, but the model gives "
                        f"{scores.shape[1]} per record.")
    return metrics.regression(y, scores)


def _some_labels(values: np.ndarray) -> str:
    shown = [f"{v:g}" for v in np.unique(values)[:5]]
    return ", ".join(shown) + (", ..." if len(np.unique(values)) > 5 else "")


def bootstrap_spread(problem_type: str, y: np.ndarray, predictions: Predictions, threshold: float,
                     samples: int, seed: int) -> dict[str, float | None]:
    """Each metric's standard deviation over bootstrap resamples of the records."""
    if samples <= 0 or len(y) < 2:
        return {}
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(samples):
        index = rng.integers(0, len(y), len(y))
        resampled = Predictions(predictions.scores[index],
                                None if predictions.labels is None else predictions.labels[index])
        results.append(measure(problem_type, y[index], resampled, threshold))
    return {name: summary["std"] for name, summary in metrics.summarize(results).items()}
