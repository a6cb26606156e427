"""Linear Learner driven directly through the Algorithm contract: real data sets, tmp dirs, no server."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.first_party.recordio import read_records, write_matrix
from sagelab.algorithms.linear_learner import algorithm as linear_learner
from sagelab.algorithms.linear_learner.algorithm import LinearLearner
from sagelab.errors import ValidationError

ALGO = LinearLearner()


# -- helpers ------------------------------------------------------------------------------------------------


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = x if y is None else np.column_stack([y, x])
    np.savetxt(path, data, delimiter=",", fmt="%.9g")
    return path


def csv_body(x: np.ndarray) -> bytes:
    out = io.StringIO()
    np.savetxt(out, x, delimiter=",", fmt="%.9g")
    return out.getvalue().encode()


def write_protobuf(path: Path, x, y: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(write_matrix(x, y))
    return path


def train(tmp_path: Path, hp: dict, train: tuple, validation: tuple | None = None, test: tuple | None = None,
          content_type: str = "text/csv") -> tuple[Path, str]:
    channels = {}
    protobuf = content_type.startswith("application/x-recordio-protobuf")
    for name, data in (("train", train), ("validation", validation), ("test", test)):
        if data is not None:
            folder = tmp_path / "data" / name
            path = write_protobuf(folder / "part.pbr", *data) if protobuf else write_csv(folder / "part.csv", *data)
            channels[name] = Channel(name, content_type, [path])
    log = io.StringIO()
    model_dir = tmp_path / "model"
    ctx = TrainingContext({key: str(value) for key, value in hp.items()}, channels, model_dir,
                          tmp_path / "output", log)
    ALGO.train(ctx)
    return model_dir, log.getvalue()


def metric(log: str, name: str) -> float:
    """The last value the declared MetricDefinition `name` extracts from the log, as SageMaker would."""
    definition = next(m for m in ALGO.metrics if m.name == name)
    values = re.findall(definition.regex, log)
    assert values, f"no {name} in the log"
    return float(values[-1])


def invoke(model_dir: Path, body: bytes, content_type: str = "text/csv", accept: str = "application/json"):
    payload, out_type = ALGO.load(model_dir).invoke(body, content_type, accept)
    return payload, out_type


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return train_test_split(x, y.astype(float), test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def diabetes():
    x, y = load_diabetes(return_X_y=True)
    return train_test_split(x, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return train_test_split(x, y.astype(float), test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory, cancer):
    xtr, xva, ytr, yva = cancer
    tmp = tmp_path_factory.mktemp("binary")
    model_dir, log = train(tmp, {"predictor_type": "binary_classifier"}, (xtr, ytr), (xva, yva), (xva, yva))
    return model_dir, log


@pytest.fixture(scope="module")
def multiclass_model(tmp_path_factory, iris):
    xtr, xva, ytr, yva = iris
    tmp = tmp_path_factory.mktemp("multiclass")
    return train(tmp, {"predictor_type": "multiclass_classifier", "num_classes": 3}, (xtr, ytr), (xva, yva))


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory, diabetes):
    xtr, xva, ytr, yva = diabetes
    tmp = tmp_path_factory.mktemp("regression")
    return train(tmp, {"predictor_type": "regressor"}, (xtr, ytr), (xva, yva), (xva, yva))


# -- declaration --------------------------------------------------------------------------------------------

REFERENCE_HYPERPARAMETERS = (
    "predictor_type", "num_classes", "feature_dim", "accuracy_top_k",
    "balance_multiclass_weights", "beta_1", "beta_2", "bias_lr_mult", "bias_wd_mult",
    "binary_classifier_model_selection_criteria", "early_stopping_patience", "early_stopping_tolerance",
    "epochs", "f_beta", "huber_delta", "init_bias", "init_method", "init_scale", "init_sigma", "l1",
    "learning_rate", "loss", "loss_insensitivity", "lr_scheduler_factor", "lr_scheduler_minimum_lr",
    "lr_scheduler_step", "margin", "mini_batch_size", "momentum", "normalize_data", "normalize_label",
    "num_calibration_samples", "num_models", "num_point_for_scaler", "optimizer",
    "positive_example_weight_mult", "quantile", "target_precision", "target_recall", "unbias_data",
    "unbias_label", "use_bias", "use_lr_scheduler", "wd")


def test_declares_the_sagemaker_surface():
    assert ALGO.name == "linear-learner"
    assert ALGO.image_repositories == ("linear-learner",)
    assert sorted(ALGO.hyperparameters.by_name()) == sorted(REFERENCE_HYPERPARAMETERS)
    assert [(c.name, c.required) for c in ALGO.channels] == [("train", True), ("validation", False),
                                                             ("test", False)]
    defaults = ALGO.hyperparameters.validate({"predictor_type": "regressor"})
    assert defaults["epochs"] == 15 and defaults["mini_batch_size"] == 1000 and defaults["loss"] == "auto"
    assert defaults["binary_classifier_model_selection_criteria"] == "accuracy"
    assert defaults["positive_example_weight_mult"] == 1.0 and defaults["normalize_data"] is True
    names = {m.name: m for m in ALGO.metrics}
    for channel in ("validation", "test"):
        for name in ("binary_classification_accuracy", "binary_f_beta", "precision", "recall", "roc_auc_score",
                     "multiclass_accuracy", "multiclass_top_k_accuracy", "macro_f_beta", "macro_precision",
                     "macro_recall", "dcg"):
            assert names[f"{channel}:{name}"].direction == "Maximize"
        for name in ("objective_loss", "mse", "rmse", "absolute_loss"):
            assert names[f"{channel}:{name}"].direction == "Minimize"
    assert names["train:objective_loss"].direction == "Minimize"
    for definition in ALGO.metrics:
        assert re.compile(definition.regex).groups == 1


def test_metric_regexes_read_real_log_lines():
    log = "\n".join([
        "#quality_metric: host=algo-1, epoch=3, train binary_classification_cross_entropy_objective <loss>=0.59",
        "#quality_metric: host=algo-1, epoch=3, validation binary_classification_cross_entropy_objective "
        "<loss>=0.61",
        "#quality_metric: host=algo-1, validation binary_f_1.000 <score>=0.994832041344",
        "#quality_metric: host=algo-1, test multiclass_top_k_accuracy_3 <score>=1.0",
        "#quality_metric: host=algo-1, validation mse <loss>=13.7",
        "#progress_metric: host=algo-1, completed 100 % of epochs",
    ])
    assert metric(log, "train:objective_loss") == 0.59
    assert metric(log, "validation:objective_loss") == 0.61
    assert metric(log, "validation:binary_f_beta") == 0.994832041344
    assert metric(log, "test:multiclass_top_k_accuracy") == 1.0
    assert metric(log, "validation:mse") == 13.7
    assert metric(log, "train:progress") == 100


# -- training quality on real data ------------------------------------------------------------------------------


def test_binary_breast_cancer_matches_logistic_regression(binary_model, cancer):
    xtr, xva, ytr, yva = cancer
    model_dir, log = binary_model
    scaler = StandardScaler().fit(xtr)
    reference = LogisticRegression(max_iter=1000).fit(scaler.transform(xtr), ytr)
    reference_accuracy = reference.score(scaler.transform(xva), yva)
    accuracy = metric(log, "validation:binary_classification_accuracy")
    assert accuracy >= 0.93
    assert accuracy >= reference_accuracy - 0.03
    assert metric(log, "validation:roc_auc_score") >= 0.97
    for name in ("binary_f_beta", "precision", "recall", "objective_loss", "binary_classification_accuracy"):
        metric(log, f"test:{name}")
    # The served model is the one the metrics describe.
    payload, _ = invoke(model_dir, csv_body(xva))
    predicted = np.array([p["predicted_label"] for p in json.loads(payload)["predictions"]])
    assert np.mean(predicted == yva) == pytest.approx(accuracy)


def test_epoch_metrics_and_progress_are_logged(binary_model):
    _, log = binary_model
    epochs = re.findall(r"epoch=(\d+), train binary_classification_cross_entropy_objective", log)
    assert epochs and epochs == [str(i) for i in range(len(epochs))]
    assert len(re.findall(r"epoch=\d+, validation \S+_objective <loss>=", log)) == len(epochs)
    assert "#progress_metric: host=algo-1, completed 100 % of epochs" in log
    assert metric(log, "train:throughput") > 0
    assert "Best model found for hyperparameters:" in log


def test_multiclass_iris(multiclass_model, iris):
    _, xva, _, yva = iris
    model_dir, log = multiclass_model
    assert metric(log, "validation:multiclass_accuracy") >= 0.9
    assert metric(log, "validation:multiclass_top_k_accuracy") == 1.0  # top-3 of 3 classes
    for name in ("macro_f_beta", "macro_precision", "macro_recall", "dcg", "objective_loss:final"):
        assert metric(log, f"validation:{name}") > 0
    payload, _ = invoke(model_dir, csv_body(xva))
    predictions = json.loads(payload)["predictions"]
    scores = np.array([p["score"] for p in predictions])
    assert scores.shape == (len(yva), 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert [p["predicted_label"] for p in predictions] == scores.argmax(axis=1).tolist()


def test_regression_diabetes_close_to_ridge(regression_model, diabetes):
    xtr, xva, ytr, yva = diabetes
    model_dir, log = regression_model
    ridge_rmse = float(np.sqrt(np.mean((Ridge(alpha=1.0).fit(xtr, ytr).predict(xva) - yva) ** 2)))
    rmse = metric(log, "validation:rmse")
    assert rmse <= 1.15 * ridge_rmse
    assert metric(log, "validation:mse") == pytest.approx(rmse ** 2)
    assert metric(log, "test:objective_loss") == pytest.approx(rmse ** 2)  # squared_loss: mse_objective
    payload, _ = invoke(model_dir, csv_body(xva))
    scores = np.array([p["score"] for p in json.loads(payload)["predictions"]])
    assert float(np.sqrt(np.mean((scores - yva) ** 2))) == pytest.approx(rmse, rel=1e-6)


@pytest.mark.parametrize("loss", ["squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                                  "eps_insensitive_absolute_loss", "huber_loss", "quantile_loss"])
def test_every_regression_loss_trains(tmp_path, diabetes, loss):
    xtr, xva, ytr, yva = diabetes
    hp = {"predictor_type": "regressor", "loss": loss, "mini_batch_size": 32, "epochs": 20}
    model_dir, log = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert re.search(r"epoch=0, train \S+_objective <loss>=", log)
    assert metric(log, "validation:rmse") < 0.85 * float(np.std(yva))  # clearly better than the mean
    assert json.loads((model_dir / "model.json").read_text())["loss"] == loss


def test_quantile_loss_fits_the_quantile(tmp_path, diabetes):
    xtr, _, ytr, _ = diabetes
    hp = {"predictor_type": "regressor", "loss": "quantile_loss", "quantile": 0.9, "mini_batch_size": 16,
          "epochs": 40, "num_models": 1}
    model_dir, _ = train(tmp_path, hp, (xtr, ytr))
    payload, _ = invoke(model_dir, csv_body(xtr))
    scores = np.array([p["score"] for p in json.loads(payload)["predictions"]])
    assert np.mean(ytr <= scores) == pytest.approx(0.9, abs=0.06)


def test_hinge_loss_binary(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    model_dir, log = train(tmp_path, {"predictor_type": "binary_classifier", "loss": "hinge_loss"},
                           (xtr, ytr), (xva, yva))
    assert metric(log, "validation:binary_classification_accuracy") >= 0.93
    assert "binary_classification_hinge_loss_objective" in log


def test_balanced_multiclass_weights_and_softmax(tmp_path, iris):
    xtr, xva, ytr, yva = iris
    hp = {"predictor_type": "multiclass_classifier", "num_classes": 3, "loss": "softmax_loss",
          "balance_multiclass_weights": "true", "optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.05,
          "mini_batch_size": 16}
    _, log = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert metric(log, "validation:multiclass_accuracy") >= 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_each_optimizer_trains(tmp_path, cancer, optimizer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "optimizer": optimizer, "mini_batch_size": 64, "num_models": 2}
    _, log = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert metric(log, "validation:binary_classification_accuracy") >= 0.93


def test_hyperparameters_reach_the_optimiser(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    base = {"predictor_type": "binary_classifier", "num_models": 1, "mini_batch_size": 64,
            "binary_classifier_model_selection_criteria": "loss_function"}
    _, good = train(tmp_path / "good", base, (xtr, ytr), (xva, yva))
    _, frozen = train(tmp_path / "frozen", {**base, "learning_rate": 1e-6}, (xtr, ytr), (xva, yva))
    assert metric(good, "validation:objective_loss:final") < 0.2
    assert metric(frozen, "validation:objective_loss:final") > 0.5  # barely moved from the initial weights
    _, one = train(tmp_path / "one", {**base, "epochs": 1}, (xtr, ytr), (xva, yva))
    assert re.findall(r"epoch=(\d+), train", one) == ["0"]
    _, three = train(tmp_path / "three", {**base, "num_models": 3}, (xtr, ytr), (xva, yva))
    assert "Training 3 model(s)" in three
    _, tuned = train(tmp_path / "tuned", {**base, "num_models": 3, "_tuning_objective_metric": "validation:recall"},
                     (xtr, ytr), (xva, yva))
    assert "Training 1 model(s)" in tuned  # SageMaker forces num_models=1 under tuning


def test_early_stopping(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "epochs": 200, "early_stopping_patience": 2,
          "early_stopping_tolerance": 0.05, "mini_batch_size": 32}
    _, log = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert "Early stopping" in log
    assert len(re.findall(r"epoch=\d+, train", log)) < 200


# -- threshold calibration ----------------------------------------------------------------------------------------


def _served_labels(model_dir: Path, x: np.ndarray) -> np.ndarray:
    payload, _ = invoke(model_dir, csv_body(x))
    return np.array([p["predicted_label"] for p in json.loads(payload)["predictions"]])


def test_recall_at_target_precision_holds_precision_on_calibration_data(tmp_path, cancer):
    xtr, _, ytr, _ = cancer
    hp = {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria":
          "recall_at_target_precision", "target_precision": 0.995}
    model_dir, _ = train(tmp_path, hp, (xtr, ytr))  # no validation: calibrated on the training data
    predicted = _served_labels(model_dir, xtr)
    true_positive = np.sum((predicted == 1) & (ytr == 1))
    assert true_positive / max(np.sum(predicted == 1), 1) >= 0.995
    assert true_positive / np.sum(ytr == 1) > 0.5


def test_precision_at_target_recall_holds_recall(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria":
          "precision_at_target_recall", "target_recall": 0.99}
    model_dir, _ = train(tmp_path, hp, (xtr, ytr), (xva, yva))  # calibrated on validation
    predicted = _served_labels(model_dir, xva)
    assert np.sum((predicted == 1) & (yva == 1)) / np.sum(yva == 1) >= 0.99


def test_loss_function_criterion_keeps_the_default_threshold(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria": "loss_function"}
    model_dir, _ = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert json.loads((model_dir / "model.json").read_text())["threshold"] == 0.5


def test_f_beta_criterion_and_positive_weight(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria": "f_beta",
          "f_beta": 2.0, "positive_example_weight_mult": "balanced"}
    model_dir, log = train(tmp_path, hp, (xtr, ytr), (xva, yva))
    assert "validation binary_f_2.000 <score>=" in log
    assert metric(log, "validation:binary_f_beta") >= 0.93
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["selected_model"]["positive_example_weight_mult"] == pytest.approx(
        np.sum(ytr == 0) / np.sum(ytr == 1))


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hp", "named"), [
    ({}, "predictor_type"),
    ({"predictor_type": "classifier"}, "predictor_type"),
    ({"predictor_type": "multiclass_classifier"}, "num_classes"),
    ({"predictor_type": "multiclass_classifier", "num_classes": "2"}, "num_classes"),
    ({"predictor_type": "binary_classifier", "loss": "softmax_loss"}, "loss"),
    ({"predictor_type": "regressor", "loss": "logistic"}, "loss"),
    ({"predictor_type": "multiclass_classifier", "num_classes": "3", "loss": "hinge_loss"}, "loss"),
    ({"predictor_type": "regressor", "learning_rate": "0"}, "learning_rate"),
    ({"predictor_type": "regressor", "beta_1": "1.0"}, "beta_1"),
    ({"predictor_type": "regressor", "optimizer": "lbfgs"}, "optimizer"),
    ({"predictor_type": "regressor", "positive_example_weight_mult": "-1"}, "positive_example_weight_mult"),
    ({"predictor_type": "regressor", "quantile": "1"}, "quantile"),
    ({"predictor_type": "regressor", "epochs": "1.5"}, "epochs"),
    ({"predictor_type": "regressor", "normalize_data": "maybe"}, "normalize_data"),
    ({"predictor_type": "regressor", "feature_dim": "0"}, "feature_dim"),
    ({"predictor_type": "regressor", "num_trees": "3"}, "num_trees"),
])
def test_bad_hyperparameters_are_rejected_by_name(hp, named):
    with pytest.raises(ValidationError, match=named):
        ALGO.hyperparameters.validate(hp)


def test_auto_values_and_underscore_keys_pass():
    values = ALGO.hyperparameters.validate({
        "predictor_type": "binary_classifier", "learning_rate": "auto", "positive_example_weight_mult": "Balanced",
        "normalize_label": "auto", "num_models": "auto", "_tuning_objective_metric": "validation:recall"})
    assert values["learning_rate"] == "auto" and values["positive_example_weight_mult"] == "balanced"
    assert values["_tuning_objective_metric"] == "validation:recall"


def test_typed_hyperparameters_from_a_job_spec_train_the_same(tmp_path, cancer):
    """The training service hands over already-validated values; validating again must not change them."""
    xtr, _, ytr, _ = cancer
    raw = {"predictor_type": "binary_classifier", "epochs": "3", "positive_example_weight_mult": "2",
           "normalize_label": "auto", "num_models": "2", "_tuning_objective_metric": "validation:recall"}
    typed = ALGO.hyperparameters.validate(raw)
    assert ALGO.hyperparameters.validate({k: v for k, v in typed.items() if v is not None}) == typed
    path = write_csv(tmp_path / "train.csv", xtr, ytr)
    logs = []
    for hp in (raw, typed):
        log = io.StringIO()
        ALGO.train(TrainingContext(hp, {"train": Channel("train", "text/csv", [path])}, tmp_path / "m",
                                   tmp_path / "o", log))
        logs.append(re.sub(r"throughput=\S+", "", log.getvalue()))
    assert logs[0] == logs[1]


@pytest.mark.parametrize(("ptype", "labels", "bad_row", "bad_value"), [
    ("binary_classifier", [0, 1, 2, 1], 3, "2.0"),
    ("binary_classifier", [0, 1, -1, 1], 3, "-1.0"),
    ("multiclass_classifier", [0, 1, 2, 3], 4, "3.0"),
    ("multiclass_classifier", [0, 1.5, 2, 1], 2, "1.5"),
])
def test_labels_outside_the_allowed_range_fail(tmp_path, ptype, labels, bad_row, bad_value):
    x = np.arange(8, dtype=float).reshape(4, 2)
    hp = {"predictor_type": ptype, "num_classes": 3}
    with pytest.raises(DataError) as caught:
        train(tmp_path, hp, (x, np.array(labels, dtype=float)))
    message = str(caught.value)
    assert f"row {bad_row}" in message and bad_value in message and "labels must be" in message


def test_feature_dim_must_match_the_data(tmp_path, cancer):
    xtr, _, ytr, _ = cancer
    with pytest.raises(DataError, match="feature_dim is 10.*30 features"):
        train(tmp_path, {"predictor_type": "binary_classifier", "feature_dim": 10}, (xtr, ytr))
    train(tmp_path, {"predictor_type": "binary_classifier", "feature_dim": 30, "epochs": 1}, (xtr, ytr))


def test_validation_width_must_match(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    with pytest.raises(DataError, match="validation"):
        train(tmp_path, {"predictor_type": "binary_classifier"}, (xtr, ytr), (xva[:, :5], yva))


def test_unsupported_training_content_type_is_refused_clearly(tmp_path, cancer):
    xtr, _, ytr, _ = cancer
    with pytest.raises(DataError, match="'application/x-parquet' is not supported.*text/csv.*recordio-protobuf"):
        train(tmp_path, {"predictor_type": "binary_classifier"}, (xtr, ytr), content_type="application/x-parquet")


def test_recordio_protobuf_trains_like_csv_and_answers_protobuf(tmp_path, cancer):
    xtr, xva, ytr, yva = cancer
    hp = {"predictor_type": "binary_classifier", "epochs": 5, "num_models": 2}
    csv_dir, csv_log = train(tmp_path / "csv", hp, (xtr, ytr), (xva, yva))
    pb_dir, pb_log = train(tmp_path / "pb", hp, (xtr.astype(np.float32), ytr), (xva.astype(np.float32), yva),
                           content_type="application/x-recordio-protobuf")
    assert metric(pb_log, "validation:binary_classification_accuracy") == pytest.approx(
        metric(csv_log, "validation:binary_classification_accuracy"), abs=0.02)
    body = write_matrix(xva[:5])
    payload, kind = invoke(pb_dir, body, "application/x-recordio-protobuf", "application/x-recordio-protobuf")
    assert kind == "application/x-recordio-protobuf"
    records = read_records(payload)
    as_json = json.loads(invoke(pb_dir, body, "application/x-recordio-protobuf", "application/json")[0])
    assert len(records) == 5
    for record, expected in zip(records, as_json["predictions"], strict=True):
        assert record.features == {} and set(record.label) == {"score", "predicted_label"}
        assert record.label["score"].values[0] == pytest.approx(expected["score"], rel=1e-6)
        assert record.label["predicted_label"].values[0] == expected["predicted_label"]


@pytest.mark.parametrize("dense_limit", [linear_learner.DENSE_LIMIT, 0])
def test_sparse_recordio_trains_dense_or_sparse(tmp_path, monkeypatch, dense_limit):
    import scipy.sparse as sp
    from sklearn.datasets import load_digits

    monkeypatch.setattr(linear_learner, "DENSE_LIMIT", dense_limit)
    x, y = load_digits(return_X_y=True)
    xtr, xva, ytr, yva = train_test_split(x, y.astype(float), test_size=0.25, random_state=0, stratify=y)
    hp = {"predictor_type": "multiclass_classifier", "num_classes": 10, "epochs": 10, "num_models": 1}
    model_dir, log = train(tmp_path, hp, (sp.csr_matrix(xtr), ytr), (sp.csr_matrix(xva), yva),
                           content_type="application/x-recordio-protobuf")
    assert ("training on the sparse matrix" in log) == (dense_limit == 0)
    assert metric(log, "validation:multiclass_accuracy") >= 0.9
    payload, _ = invoke(model_dir, write_matrix(sp.csr_matrix(xva[:3])), "application/x-recordio-protobuf",
                        "application/x-recordio-protobuf")
    for record in read_records(payload):
        assert len(record.label["score"].values) == 10
        assert record.label["predicted_label"].values[0] == int(np.argmax(record.label["score"].values))


def test_protobuf_label_errors_name_the_record(tmp_path):
    x = np.ones((3, 2))
    with pytest.raises(DataError, match="Channel 'train', record 2: label 2.0 is not valid"):
        train(tmp_path, {"predictor_type": "binary_classifier"}, (x, np.array([0.0, 2.0, 1.0])),
              content_type="application/x-recordio-protobuf")
    with pytest.raises(DataError, match="Channel 'train': the records carry no label"):
        train(tmp_path, {"predictor_type": "binary_classifier"}, (x,),
              content_type="application/x-recordio-protobuf")


def test_missing_feature_value_fails_with_its_row(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("1,0.5,0.25\n0,,0.75\n")
    ctx = TrainingContext({"predictor_type": "binary_classifier"}, {"train": Channel("train", "text/csv", [path])},
                          tmp_path / "model", tmp_path / "out", io.StringIO())
    with pytest.raises(DataError, match="row 2: feature 1"):
        ALGO.train(ctx)


# -- inference formats --------------------------------------------------------------------------------------------


def test_binary_response_formats(binary_model, cancer):
    _, xva, _, _ = cancer
    model_dir, _ = binary_model
    rows = xva[:3]
    payload, kind = invoke(model_dir, csv_body(rows), "text/csv", "application/json")
    assert kind == "application/json"
    predictions = json.loads(payload)["predictions"]
    assert len(predictions) == 3
    for p in predictions:
        assert set(p) == {"score", "predicted_label"}
        assert 0.0 <= p["score"] <= 1.0 and p["predicted_label"] in (0, 1)
        assert isinstance(p["predicted_label"], int) and isinstance(p["score"], float)
    lines, kind = invoke(model_dir, csv_body(rows), "text/csv", "application/jsonlines")
    assert kind == "application/jsonlines"
    assert [json.loads(line) for line in lines.decode().splitlines()] == predictions
    text, kind = invoke(model_dir, csv_body(rows), "text/csv", "text/csv")
    assert kind == "text/csv"
    assert text.decode() == "".join(f"{p['predicted_label']},{p['score']!r}\n" for p in predictions)
    default, kind = invoke(model_dir, csv_body(rows), "text/csv", "")
    assert kind == "application/json" and json.loads(default)["predictions"] == predictions


def test_request_encodings_agree(binary_model, cancer):
    _, xva, _, _ = cancer
    model_dir, _ = binary_model
    rows = xva[:4].astype(np.float32).astype(float)
    expected = json.loads(invoke(model_dir, csv_body(rows))[0])
    dense = {"instances": [{"features": r.tolist()} for r in rows]}
    nested = {"instances": [{"data": {"features": {"values": r.tolist()}}} for r in rows]}
    sparse = {"instances": [{"data": {"features": {"keys": np.flatnonzero(r).tolist(), "shape": [len(r)],
                                                    "values": r[r != 0].tolist()}}} for r in rows]}
    for body in (dense, nested, sparse):
        assert json.loads(invoke(model_dir, json.dumps(body).encode(), "application/json")[0]) == expected
    lines = "\n".join(json.dumps({"features": r.tolist()}) for r in rows).encode()
    assert json.loads(invoke(model_dir, lines, "application/jsonlines")[0]) == expected
    assert json.loads(invoke(model_dir, csv_body(rows), "text/csv; charset=utf-8")[0]) == expected


def test_multiclass_and_regression_response_formats(multiclass_model, regression_model, iris, diabetes):
    model_dir, _ = multiclass_model
    payload, _ = invoke(model_dir, csv_body(iris[1][:2]), accept="application/jsonlines")
    for line in payload.decode().splitlines():
        record = json.loads(line)
        assert set(record) == {"score", "predicted_label"}
        assert len(record["score"]) == 3 and record["predicted_label"] == int(np.argmax(record["score"]))
    text, _ = invoke(model_dir, csv_body(iris[1][:2]), accept="text/csv")
    assert [len(line.split(",")) for line in text.decode().splitlines()] == [4, 4]
    model_dir, _ = regression_model
    payload, _ = invoke(model_dir, csv_body(diabetes[1][:2]))
    predictions = json.loads(payload)["predictions"]
    assert [set(p) for p in predictions] == [{"score"}, {"score"}]
    text, _ = invoke(model_dir, csv_body(diabetes[1][:2]), accept="text/csv")
    assert [float(v) for v in text.decode().split()] == [p["score"] for p in predictions]


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "message"), [
    (b"1,2,3,4", "application/x-recordio-protobuf", "application/json", 400, "bad magic number"),
    (b"1,2", "text/plain", "application/json", 415, "text/plain"),
    (b"1,2", "text/csv", "application/xml", 406, "application/xml"),
    (b"", "text/csv", "application/json", 400, "empty"),
    (b"1,2,3\n", "text/csv", "application/json", 400, "3 values; the model expects 30"),
    (b",".join([b"1"] * 29 + [b"abc"]), "text/csv", "application/json", 400, "record 1, feature 30: 'abc'"),
    (b'{"instances": [{"features": [1, 2]}]}', "application/json", "application/json", 400,
     "Instance 1 has 2 features; the model expects 30"),
    (b'{"instances": [{"features": ' + json.dumps([1] * 29 + ["x"]).encode() + b"}]}", "application/json",
     "application/json", 400, "feature 30: 'x' is not a number"),
    (b"{not json", "application/json", "application/json", 400, "not valid JSON"),
    (b'{"data": {"features": {"keys": [40], "shape": [30], "values": [1]}}}', "application/json",
     "application/json", 400, "sparse key 40"),
    (json.dumps({"features": [1] * 30}).encode() + b"\nnope", "application/jsonlines", "application/json", 400,
     "JSON Lines line 2 is not valid JSON"),
])
def test_bad_requests(binary_model, body, content_type, accept, status, message):
    model_dir, _ = binary_model
    with pytest.raises(InferenceError) as caught:
        invoke(model_dir, body, content_type, accept)
    assert caught.value.status == status
    assert message in str(caught.value)


# -- artifact ------------------------------------------------------------------------------------------------------


def test_artifact_is_numpy_and_json_only(binary_model):
    model_dir, _ = binary_model
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.json", "model.npz"]
    with np.load(model_dir / "model.npz", allow_pickle=False) as arrays:
        assert arrays["weights"].shape == (30, 1) and arrays["feature_scale"].shape == (30,)
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["predictor_type"] == "binary_classifier" and meta["feature_dim"] == 30
    assert meta["hyperparameters"]["predictor_type"] == "binary_classifier"


def test_reload_in_a_fresh_process_gives_identical_predictions(binary_model, regression_model, cancer, diabetes):
    for (model_dir, _), rows in ((binary_model, cancer[1][:20]), (regression_model, diabetes[1][:20])):
        body = csv_body(rows)
        expected, _ = invoke(model_dir, body)
        script = ("import sys; from pathlib import Path; "
                  "from sagelab.algorithms.linear_learner.algorithm import LinearLearner; "
                  "p = LinearLearner().load(Path(sys.argv[1])); "
                  "sys.stdout.buffer.write(p.invoke(sys.stdin.buffer.read(), 'text/csv', 'application/json')[0])")
        result = subprocess.run([sys.executable, "-c", script, str(model_dir)], input=body, capture_output=True,
                                check=True)
        assert result.stdout == expected
