"""The metrics library agrees with scikit-learn, and says None where a metric is undefined."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as sk

from sagelab.evaluation import metrics


@pytest.fixture
def binary():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    score = np.clip(0.35 * y + rng.random(300) * 0.65, 0, 1)
    return y, score


def test_binary_metrics_match_sklearn(binary):
    y, score = binary
    got = metrics.binary_classification(y, score, threshold=0.5)
    predicted = (score > 0.5).astype(float)
    tn, fp, fn, tp = sk.confusion_matrix(y, predicted).ravel()
    expected = {
        "accuracy": sk.accuracy_score(y, predicted),
        "precision": sk.precision_score(y, predicted),
        "recall": sk.recall_score(y, predicted),
        "sensitivity": sk.recall_score(y, predicted),
        "specificity": tn / (tn + fp),
        "false_positive_rate": fp / (fp + tn),
        "false_negative_rate": fn / (fn + tp),
        "f1": sk.f1_score(y, predicted),
        "f0_5": sk.fbeta_score(y, predicted, beta=0.5),
        "f2": sk.fbeta_score(y, predicted, beta=2),
        "auc": sk.roc_auc_score(y, score),
        "pr_auc": sk.average_precision_score(y, score),
        "log_loss": sk.log_loss(y, score),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name


def test_threshold_moves_the_decision(binary):
    y, score = binary
    low, high = (metrics.binary_classification(y, score, threshold=t) for t in (0.2, 0.8))
    assert low["recall"] > high["recall"] and low["precision"] < high["precision"]
    assert low["auc"] == high["auc"]


def test_undefined_metrics_are_none_and_json_safe():
    got = metrics.binary_classification([1, 1, 1], [0.9, 0.2, 0.7])
    assert got["auc"] is None and got["pr_auc"] is None and got["specificity"] is None
    assert got["recall"] == pytest.approx(2 / 3)
    json.dumps(got, allow_nan=False)
    raw_scores = metrics.binary_classification([0, 1], [-2.0, 3.0], threshold=0.0)
    assert raw_scores["log_loss"] is None and raw_scores["accuracy"] == 1.0
    assert metrics.regression([1.0], [2.0])["r2"] is None


def test_binary_rejects_other_labels():
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.binary_classification([0, 2], [0.1, 0.9])


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 240)
    logits = rng.normal(size=(240, 3)) + np.eye(3)[y] * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = metrics.multiclass_classification(y, y_proba=proba)
    predicted = proba.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    for average in ("macro", "micro", "weighted"):
        assert got[f"precision_{average}"] == pytest.approx(sk.precision_score(y, predicted, average=average))
        assert got[f"recall_{average}"] == pytest.approx(sk.recall_score(y, predicted, average=average))
        assert got[f"f1_{average}"] == pytest.approx(sk.f1_score(y, predicted, average=average))
    assert got["f1_micro"] == pytest.approx(got["accuracy"])
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, proba), rel=1e-9)
    assert got["auc_macro"] == pytest.approx(sk.roc_auc_score(y, proba, multi_class="ovr"))
    assert got["weighted_f2"] == pytest.approx(sk.fbeta_score(y, predicted, beta=2, average="weighted"))
    from_classes = metrics.multiclass_classification(y, y_pred=predicted)
    assert from_classes["accuracy"] == got["accuracy"] and "log_loss" not in from_classes


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(9)
    y = rng.normal(50, 10, 200)
    predicted = y + rng.normal(0, 3, 200)
    got = metrics.regression(y, predicted)
    mse = sk.mean_squared_error(y, predicted)
    assert got["mse"] == pytest.approx(mse)
    assert got["rmse"] == pytest.approx(math.sqrt(mse))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted))
    assert got["r2"] == pytest.approx(sk.r2_score(y, predicted))
    assert got["sse"] == pytest.approx(mse * len(y))
    assert got["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, predicted))
    assert got["explained_variance"] == pytest.approx(sk.explained_variance_score(y, predicted))


def test_confusion_matrix_rows_are_actual_classes():
    got = metrics.confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0])
    assert got == {"labels": [0, 1, 2], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]]}
    assert got["matrix"] == sk.confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0]).tolist()


def test_summarize_gives_mean_and_population_std():
    folds = [{"accuracy": 0.9, "auc": None}, {"accuracy": 0.8, "auc": 0.7}, {"accuracy": 1.0, "auc": 0.9}]
    summary = metrics.summarize(folds)
    assert summary["accuracy"]["mean"] == pytest.approx(0.9)
    assert summary["accuracy"]["std"] == pytest.approx(np.std([0.9, 0.8, 1.0]))
    assert summary["auc"] == {"mean": pytest.approx(0.8), "std": pytest.approx(0.1)}
    assert metrics.summarize([{"auc": None}]) == {"auc": {"mean": None, "std": None}}


def test_building_blocks_match_sklearn(binary):
    y, score = binary
    at_threshold = metrics.threshold_metrics(y == 1, score > 0.4)
    assert at_threshold["precision"] == pytest.approx(sk.precision_score(y, score > 0.4))
    assert at_threshold["f2"] == pytest.approx(sk.fbeta_score(y, score > 0.4, beta=2))
    assert metrics.roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score))
    assert metrics.roc_auc(np.ones(5), np.arange(5.0)) is None
    assert metrics.log_loss(y, score) == pytest.approx(sk.log_loss(y, np.clip(score, 1e-15, 1 - 1e-15)))
    assert metrics.accuracy([1, 2, 3, 3], [1, 2, 2, 3]) == 0.75
    with pytest.raises(ValueError, match="same, non-zero number"):
        metrics.threshold_metrics([True], [True, False])


@pytest.mark.parametrize("emit", ["linear_learner", "factorization_machines", "random_cut_forest"])
def test_algorithms_emit_the_librarys_values(emit, binary):
    y, score = binary
    expected = metrics.binary_classification(y, score, threshold=0.5)
    if emit == "linear_learner":
        from sagelab.algorithms.linear_learner.metrics import binary_metrics

        got = binary_metrics(y, score, 0.5, 1.0)
        assert got["binary_classification_accuracy"] == expected["accuracy"]
        assert got["binary_f_1.000"] == pytest.approx(expected["f1"])
        assert got["roc_auc_score"] == pytest.approx(expected["auc"])
    elif emit == "factorization_machines":
        from sagelab.algorithms.factorization_machines.algorithm import metrics as fm_metrics
        from sagelab.algorithms.factorization_machines.model import BINARY

        raw = np.log(np.clip(score, 1e-6, 1 - 1e-6) / np.clip(1 - score, 1e-6, 1))  # sigmoid(raw) == score
        got = fm_metrics(BINARY, y, raw)
        assert got["binary_classification_cross_entropy"][0] == pytest.approx(metrics.log_loss(y, score), rel=1e-4)
    else:
        from sagelab.algorithms.random_cut_forest.algorithm import evaluate

        got = evaluate(score, y, ["accuracy", "precision_recall_fscore"])
        threshold = score.mean() + 3 * score.std()
        assert got["accuracy"][0] == metrics.threshold_metrics(y == 1, score > threshold)["accuracy"]
