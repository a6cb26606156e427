"""Linear Learner's evaluation: binary threshold calibration and the metrics it logs.

Calibration follows `ll_how-it-works` step 3: on the calibration sample (validation data, else training data)
the decision threshold is the one that optimises `binary_classifier_model_selection_criteria`, and the same
value ranks the parallel models. Every candidate threshold is evaluated at once from one sort of the scores.
A record is predicted positive when its score is strictly greater than the threshold; chosen thresholds lie
midway between two neighbouring scores, so nearby rounding cannot flip a calibration record.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sagelab.evaluation import metrics

#: Criteria that rank models by their loss and keep the default threshold.
LOSS_CRITERIA = ("loss_function", "cross_entropy_loss")


@dataclasses.dataclass(frozen=True)
class Calibration:
    threshold: float
    #: The criterion's value at that threshold (higher is better); for loss criteria, minus the loss.
    value: float
    #: False when no threshold reaches the target (recall_at_target_precision only).
    feasible: bool = True


def calibrate(y: np.ndarray, scores: np.ndarray, criterion: str, *, beta: float = 1.0,
              target_recall: float = 0.8, target_precision: float = 0.8, default: float = 0.5) -> Calibration:
    """The threshold that optimises `criterion` on (y, scores); y is 0/1."""
    n = len(y)
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    positives_seen = np.cumsum(y[order] == 1)
    total_pos = int(positives_seen[-1]) if n else 0
    # Cut c = number of records predicted positive; only cuts between distinct scores are achievable.
    ends = np.flatnonzero(np.diff(s) != 0) + 1
    cuts = np.concatenate(([0], ends, [n])).astype(np.int64)
    tp = np.where(cuts > 0, positives_seen[np.maximum(cuts - 1, 0)], 0).astype(np.float64)
    fp = cuts - tp
    tn = (n - total_pos) - fp
    recall = tp / total_pos if total_pos else np.zeros_like(tp)
    precision = np.divide(tp, cuts, out=np.zeros_like(tp), where=cuts > 0)
    accuracy = (tp + tn) / n
    fbeta = _fbeta(precision, recall, beta)
    thresholds = _thresholds(s, cuts)

    feasible = True
    if criterion == "accuracy":
        value = accuracy
    elif criterion in ("f_beta", "f1"):
        value = fbeta if criterion == "f_beta" else _fbeta(precision, recall, 1.0)
    elif criterion == "precision_at_target_recall":
        # Recall 1 at c = n is always reachable, so some cut qualifies.
        value = np.where(recall >= target_recall, precision + 1e-9 * recall, -np.inf)
    elif criterion == "recall_at_target_precision":
        ok = (precision >= target_precision) & (cuts > 0)
        if ok.any():
            value = np.where(ok, recall + 1e-9 * precision, -np.inf)
        else:
            feasible = False
            value = precision - 1.0  # rank below every model that reaches the target
    else:
        raise ValueError(f"not a threshold criterion: {criterion!r}")
    best = np.flatnonzero(value == value.max())
    # Among equally good cuts, the one nearest the default threshold.
    pick = int(best[np.argmin(np.abs(thresholds[best] - default))])
    if criterion == "precision_at_target_recall":
        reported = float(precision[pick])
    elif criterion == "recall_at_target_precision":
        reported = float(recall[pick]) if feasible else float(precision[pick]) - 1.0
    else:
        reported = float(value[pick])
    return Calibration(float(thresholds[pick]), reported, feasible)


def _fbeta(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return np.divide((1 + b2) * precision * recall, denominator, out=np.zeros_like(precision),
                     where=denominator > 0)


def _thresholds(sorted_scores: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """For each cut, a threshold t with sorted_scores[:c] > t >= sorted_scores[c:]."""
    n = len(sorted_scores)
    out = np.empty(len(cuts))
    inner = (cuts > 0) & (cuts < n)
    upper, lower = sorted_scores[cuts[inner] - 1], sorted_scores[cuts[inner]]
    mid = lower + (upper - lower) / 2.0
    out[inner] = np.where((lower <= mid) & (mid < upper), mid, lower)
    out[cuts == 0] = sorted_scores[0]
    out[cuts == n] = np.nextafter(sorted_scores[-1], -np.inf)
    return out


def binary_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, beta: float) -> dict[str, float]:
    """Accuracy, F-beta, precision, recall at `threshold`, and ROC AUC when both classes are present."""
    actual = y == 1
    at_threshold = metrics.threshold_metrics(actual, scores > threshold)
    precision, recall = at_threshold["precision"] or 0.0, at_threshold["recall"] or 0.0
    out = {"binary_classification_accuracy": at_threshold["accuracy"],
           f"binary_f_{beta:.3f}": metrics.f_beta(precision, recall, beta), "precision": precision, "recall": recall}
    auc = metrics.roc_auc(actual, scores)
    if auc is not None:
        out["roc_auc_score"] = auc
    return out


def multiclass_metrics(y: np.ndarray, probs: np.ndarray, top_k: int, beta: float) -> dict[str, float]:
    """Accuracy, top-k accuracy, DCG of the true class, and macro precision/recall/F-beta."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = y.astype(np.int64)
    predicted = probs.argmax(axis=1)
    true_prob = probs[np.arange(len(labels)), labels]
    # 1-based rank of the true class; ties count in its favour.
    rank = 1 + np.sum(probs > true_prob[:, None], axis=1)
    k = min(top_k, probs.shape[1])
    precision, recall, fbeta, _ = precision_recall_fscore_support(
        labels, predicted, beta=beta, average="macro", zero_division=0)
    return {"multiclass_accuracy": float(np.mean(predicted == labels)),
            f"multiclass_top_k_accuracy_{k}": float(np.mean(rank <= k)),
            "dcg": float(np.mean(1.0 / np.log2(1.0 + rank))),
            "macro_recall": float(recall), "macro_precision": float(precision),
            f"macro_f_{beta:.3f}": float(fbeta)}


def regression_metrics(y: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    values = metrics.regression(y, predictions)
    return {"mse": values["mse"], "rmse": values["rmse"], "absolute_loss": values["mae"]}
