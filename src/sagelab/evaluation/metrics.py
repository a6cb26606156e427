"""Model quality metrics on top of scikit-learn, returned as plain dicts of floats.

One function per problem type, each returning every metric the AWS exam and SageMaker's model-quality
reports use, under SageMaker's names (`recall`, `f0_5`, `auc`, `rmse`, ...):

- `binary_classification(y_true, y_score)`: `y_score` is the positive class's probability (or a 0/1
  prediction); a record is predicted positive when its score is above `threshold` (as the built-in
  algorithms decide). Sensitivity is recall (the true
  positive rate), specificity the true negative rate.
- `multiclass_classification(y_true, y_pred, y_proba)`: accuracy, and precision/recall/F1 averaged three
  ways (`macro`: classes count equally; `micro`: records count equally, which equals accuracy; `weighted`:
  by class support), plus log loss and one-vs-rest ROC-AUC when class probabilities are given.
- `regression(y_true, y_pred)`: MSE, RMSE, MAE, R², SSE, MAPE (a fraction, as scikit-learn computes it)
  and explained variance.

A metric that is undefined on the data (ROC-AUC with one class present, R² of one record) is `None`,
never NaN, so every result is valid JSON. `summarize` turns per-fold results into mean and spread.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Metrics = dict[str, float | None]


def _arrays(*values: Any) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"Metric inputs must have the same number of records, got lengths {sorted(lengths)}.")
    if not lengths or 0 in lengths:
        raise ValueError("Metrics need at least one record.")
    return arrays


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _safe(compute) -> float | None:
    """A metric scikit-learn cannot compute on this data (e.g. AUC with one class) is None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _finite(compute())
    except ValueError:
        return None


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def f_beta(precision: float | None, recall: float | None, beta: float) -> float | None:
    """F-beta from precision and recall: beta > 1 weighs recall more, beta < 1 precision."""
    if precision is None or recall is None:
        return None
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator else 0.0


# --- confusion matrix ---------------------------------------------------------------------------------
def confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                     labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """`{"labels": [...], "matrix": [[...]]}`: rows are actual classes, columns predicted ones."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    matrix = sk_confusion_matrix(y_true, y_pred, labels=list(labels))
    return {"labels": [_plain(label) for label in labels], "matrix": matrix.tolist()}


def _plain(value: Any) -> Any:
    """A label as JSON shows it: integral floats as ints."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- binary classification ----------------------------------------------------------------------------
def threshold_metrics(actual: Sequence[bool], predicted: Sequence[bool]) -> Metrics:
    """Everything the confusion matrix of one decision gives: accuracy, precision, recall (= sensitivity,
    the true positive rate), specificity (the true negative rate), the error rates and F0.5/F1/F2.

    Cheap (counts only), so algorithms call it every epoch. A ratio whose denominator is zero is None."""
    actual, predicted = np.asarray(actual, dtype=bool), np.asarray(predicted, dtype=bool)
    if actual.shape != predicted.shape or not actual.size:
        raise ValueError(f"Metric inputs must have the same, non-zero number of records, got {actual.size} "
                         f"labels and {predicted.size} predictions.")
    tp = float(np.count_nonzero(predicted & actual))
    fp = float(np.count_nonzero(predicted & ~actual))
    fn = float(np.count_nonzero(~predicted & actual))
    tn = float(actual.size) - tp - fp - fn
    precision, recall, specificity = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {
        "accuracy": (tp + tn) / actual.size,
        "precision": precision,
        "recall": recall,
        "sensitivity": recall,
        "specificity": specificity,
        "true_positive_rate": recall,
        "true_negative_rate": specificity,
        "false_positive_rate": _ratio(fp, fp + tn),
        "false_negative_rate": _ratio(fn, fn + tp),
        "f0_5": f_beta(precision, recall, 0.5),
        "f1": f_beta(precision, recall, 1.0),
        "f2": f_beta(precision, recall, 2.0),
    }


def roc_auc(y_true: Sequence[float], y_score: Sequence[float]) -> float | None:
    """Area under the ROC curve; None unless both classes are present."""
    from sklearn.metrics import roc_auc_score

    y, score = _arrays(y_true, y_score)
    return _safe(lambda: roc_auc_score(y, score)) if 0 < np.count_nonzero(y) < len(y) else None


def log_loss(y_true: Sequence[float], probability: Sequence[float]) -> float:
    """Binary cross-entropy of 0/1 labels under the probability of class 1 (clipped away from 0 and 1)."""
    y, p = _arrays(y_true, probability)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def binary_classification(y_true: Sequence[float], y_score: Sequence[float], *,
                          threshold: float = 0.5) -> Metrics:
    """Every binary metric, with labels 0/1 and `y_score` the probability (or prediction) of class 1."""
    from sklearn.metrics import average_precision_score

    y, score = _arrays(y_true, y_score)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("Binary classification labels must be 0 or 1.")
    result = threshold_metrics(y == 1, score > threshold)
    both_classes = 0 < np.count_nonzero(y) < len(y)
    probabilities = bool(np.all((score >= 0) & (score <= 1)))
    positive_rate = float(np.count_nonzero(y)) / len(y)
    result.update({
        "auc": roc_auc(y, score),
        "pr_auc": _safe(lambda: average_precision_score(y, score)) if both_classes else None,
        "log_loss": log_loss(y, score) if probabilities else None,
        # What always answering the majority class would score: the floor a model must beat.
        "accuracy_best_constant_classifier": max(positive_rate, 1 - positive_rate),
        "precision_best_constant_classifier": positive_rate,
        "recall_best_constant_classifier": 1.0 if positive_rate else 0.0,
    })
    return result


def binary_curves(y_true: Sequence[float], y_score: Sequence[float]) -> dict[str, dict[str, list[float]]]:
    """The ROC and precision-recall curves, as SageMaker's model-quality report lists them."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, score = _arrays(y_true, y_score)
    if not 0 < y.sum() < len(y):
        return {}
    fpr, tpr, _ = roc_curve(y, score)
    precisions, recalls, _ = precision_recall_curve(y, score)
    return {"receiver_operating_characteristic_curve": {"false_positive_rates": fpr.tolist(),
                                                        "true_positive_rates": tpr.tolist()},
            "precision_recall_curve": {"precisions": precisions.tolist(), "recalls": recalls.tolist()}}


# --- multiclass classification --------------------------------------------------------------------------
def accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """The fraction of records whose predicted class is the actual one."""
    y, predicted = np.asarray(y_true), np.asarray(y_pred)
    if y.shape != predicted.shape or not y.size:
        raise ValueError(f"Metric inputs must have the same, non-zero number of records, got {y.size} labels "
                         f"and {predicted.size} predictions.")
    return float(np.mean(y == predicted))


def multiclass_classification(y_true: Sequence[Any], y_pred: Sequence[Any] | None = None,
                              y_proba: Any = None, *, labels: Sequence[Any] | None = None) -> Metrics:
    """Multiclass metrics from predicted classes, or from class probabilities (columns in `labels` order,
    default 0..k-1), from which the predicted class is the most probable one."""
    from sklearn.metrics import log_loss as multiclass_log_loss
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y_true)
    proba = None if y_proba is None else np.asarray(y_proba, dtype=np.float64)
    if proba is not None:
        if proba.ndim != 2 or len(proba) != len(y):
            raise ValueError(f"Class probabilities must be a (records, classes) matrix for {len(y)} records, "
                             f"got shape {proba.shape}.")
        labels = list(range(proba.shape[1])) if labels is None else list(labels)
        predicted = np.asarray(labels)[proba.argmax(axis=1)] if y_pred is None else np.asarray(y_pred)
    elif y_pred is None:
        raise ValueError("Multiclass metrics need predicted classes or class probabilities.")
    else:
        predicted = np.asarray(y_pred)
    if len(predicted) != len(y) or not len(y):
        raise ValueError("Multiclass metrics need the same, non-zero number of labels and predictions.")
    if labels is None:
        labels = list(np.unique(np.concatenate([y, predicted])))
    result: Metrics = {"accuracy": accuracy(y, predicted)}
    for average in ("macro", "micro", "weighted"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, r, f, _ = precision_recall_fscore_support(y, predicted, labels=labels, average=average,
                                                         zero_division=0)
        result[f"precision_{average}"] = float(p)
        result[f"recall_{average}"] = float(r)
        result[f"f1_{average}"] = float(f)
    result["weighted_f0_5"] = _safe(lambda: _fbeta_weighted(y, predicted, labels, 0.5))
    result["weighted_f2"] = _safe(lambda: _fbeta_weighted(y, predicted, labels, 2.0))
    if proba is not None:
        clipped = np.clip(proba, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        result["log_loss"] = _safe(lambda: multiclass_log_loss(y, clipped, labels=labels))
        present = len(np.unique(y)) == len(labels)
        result["auc_macro"] = _safe(lambda: roc_auc_score(y, clipped, multi_class="ovr", average="macro",
                                                          labels=labels)) if present else None
        result["auc_weighted"] = _safe(lambda: roc_auc_score(y, clipped, multi_class="ovr",
                                                             average="weighted", labels=labels)) if present else None
    return result


def _fbeta_weighted(y: np.ndarray, predicted: np.ndarray, labels: Sequence[Any], beta: float) -> float:
    from sklearn.metrics import fbeta_score

    return fbeta_score(y, predicted, beta=beta, labels=labels, average="weighted", zero_division=0)


# --- regression -------------------------------------------------------------------------------------------
def regression(y_true: Sequence[float], y_pred: Sequence[float]) -> Metrics:
    from sklearn.metrics import (
        explained_variance_score,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_error,
        r2_score,
    )

    y, predicted = _arrays(y_true, y_pred)
    mse = float(mean_squared_error(y, predicted))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": _safe(lambda: r2_score(y, predicted)) if len(y) > 1 else None,
        "sse": float(np.sum((y - predicted) ** 2)),
        "mape": _finite(mean_absolute_percentage_error(y, predicted)),
        "explained_variance": _safe(lambda: explained_variance_score(y, predicted)) if len(y) > 1 else None,
    }


# --- several evaluations ------------------------------------------------------------------------------
def summarize(results: Iterable[Mapping[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Per metric, the mean and the (population) standard deviation over results, e.g. folds.

    A metric undefined in some results (None) is summarised over the others; undefined everywhere, None.
    """
    results = list(results)
    names: list[str] = []
    for result in results:
        names.extend(name for name in result if name not in names)
    summary: dict[str, dict[str, float | None]] = {}
    for name in names:
        values = np.array([r[name] for r in results if r.get(name) is not None], dtype=np.float64)
        summary[name] = ({"mean": float(values.mean()), "std": float(values.std())} if len(values)
                         else {"mean": None, "std": None})
    return summary
