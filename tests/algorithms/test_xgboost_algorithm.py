"""XGBoost: hyperparameters, channels and content types, native metric lines, artifacts, inference formats."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.xgboost.algorithm import XGBoostAlgorithm
from sagelab.algorithms.xgboost.hyperparameters import OBJECTIVES
from sagelab.algorithms.xgboost.predictor import MODEL_FILE
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit
from sagelab.training.metrics import extract_metrics

ALGORITHM = XGBoostAlgorithm()


@pytest.fixture(scope="module")
def cancer() -> kit.Dataset:
    return kit.breast_cancer()


@pytest.fixture(scope="module")
def iris() -> kit.Dataset:
    return kit.iris()


@pytest.fixture(scope="module")
def diabetes() -> kit.Dataset:
    return kit.diabetes()


def csv_channels(tmp_path: Path, data: kit.Dataset, *, validation: bool = True, content_type: str = "text/csv",
                 labels: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Channel]:
    y_train, y_validation = labels if labels is not None else (data.y_train, data.y_validation)
    channels = {"train": Channel("train", content_type, [kit.write_csv(tmp_path / "train.csv", data.x_train,
                                                                       y_train)])}
    if validation:
        channels["validation"] = Channel("validation", content_type, [kit.write_csv(
            tmp_path / "validation.csv", data.x_validation, y_validation)])
    return channels


def train(tmp_path: Path, hyperparameters: dict[str, str], channels: dict[str, Channel], *,
          raw: bool = False) -> tuple[str, Path]:
    """Train as a job does (validated values; or SageMaker's raw strings with raw=True); (log, model_dir)."""
    values = dict(hyperparameters) if raw else ALGORITHM.hyperparameters.validate(hyperparameters)
    log = io.StringIO()
    model_dir = tmp_path / "model"
    ALGORITHM.train(TrainingContext(values, channels, model_dir, tmp_path / "output", log))
    return log.getvalue(), model_dir


def booster(model_dir: Path) -> xgb.Booster:
    b = xgb.Booster()
    b.load_model(bytearray((model_dir / MODEL_FILE).read_bytes()))
    return b


def csv_body(features: np.ndarray) -> bytes:
    body = kit.encode_request(features, "text/csv")
    assert body is not None
    return body


def round_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.match(r"^\[[0-9]+\]\t", line)]


# ---------------------------------------------------------------------------------------------- declarations


def test_declarations():
    assert ALGORITHM.name == "xgboost"
    assert ALGORITHM.image_repositories == ("sagemaker-xgboost", "xgboost")
    train_spec, validation_spec = ALGORITHM.channels
    assert (train_spec.name, train_spec.required, validation_spec.name, validation_spec.required) == \
           ("train", True, "validation", False)
    assert train_spec.default_content_type == "text/libsvm"
    for content_type in ("text/libsvm", "text/x-libsvm", "libsvm", "text/csv", "csv", "application/x-parquet",
                         "parquet"):
        assert content_type in train_spec.content_types
    names = {m.name: m for m in ALGORITHM.metrics}
    assert names["validation:auc"].direction == "Maximize"
    assert names["validation:rmse"].direction == "Minimize"
    assert names["train:f1_binary"].direction == "Maximize"
    assert len(names) == 2 * 33


def test_metric_regexes_read_native_lines():
    line = "[12]\ttrain-auc:0.99100\ttrain-error@0.7:0.01000\tvalidation-auc:0.97100\tvalidation-map:0.5"
    values = extract_metrics([line], ALGORITHM.metrics)
    assert values == {"train:auc": 0.991, "validation:auc": 0.971, "validation:map": 0.5}
    # CloudWatch shows the tab as #011; AWS-style regexes and ours read the same line.
    regex = {m.name: m.regex for m in ALGORITHM.metrics}["validation:auc"]
    assert re.match(regex, line).group(1) == "0.97100"


# ---------------------------------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(("given", "fragments"), [
    ({}, ["'num_round' is required"]),
    ({"num_round": "0"}, ["'num_round'", ">= 1", "'0'"]),
    ({"num_round": "ten"}, ["'num_round'", "an integer", "'ten'"]),
    ({"objective": "binary:nope"}, ["'objective'", "binary:logistic", "survival:cox", "'binary:nope'"]),
    ({"objective": "multi:softprob"}, ["'num_class' is required", "multi:softprob"]),
    ({"objective": "binary:logistic", "num_class": "3"}, ["'num_class'", "multi:softmax", "binary:logistic"]),
    ({"num_class": "1", "objective": "multi:softmax"}, ["'num_class'", ">= 2", "'1'"]),
    ({"eval_metric": "auc,bogus"}, ["'eval_metric'", "'bogus'", "accuracy", "error@t"]),
    ({"eval_metric": "error@high"}, ["'eval_metric'", "'error@high'"]),
    ({"eta": "1.5"}, ["'eta'", "<= 1", "'1.5'"]),
    ({"learning_rate": "-0.1"}, ["'learning_rate'", ">= 0"]),
    ({"subsample": "0"}, ["'subsample'", "> 0", "'0'"]),
    ({"tweedie_variance_power": "2"}, ["'tweedie_variance_power'", "< 2"]),
    ({"booster": "forest"}, ["'booster'", "gbtree, gblinear, dart", "'forest'"]),
    ({"tree_method": "gpu"}, ["'tree_method'", "gpu_hist", "'gpu'"]),
    ({"csv_weights": "2"}, ["'csv_weights'", "0, 1", "'2'"]),
    ({"monotone_constraints": "(1,2)"}, ["'monotone_constraints'", "-1, 0 and 1", "(1, 2)"]),
    ({"interaction_constraints": "[[0, \"a\"]]"}, ["'interaction_constraints'", "nested list"]),
    ({"updater": "grow_magic"}, ["'updater'", "grow_colmaker", "'grow_magic'"]),
    ({"single_precision_histogram": "maybe"}, ["'single_precision_histogram'", "true or false", "'maybe'"]),
    ({"_tuning_objective_metric": "validation:nope"}, ["'_tuning_objective_metric'", "validation:<metric>"]),
    ({"num_rounds": "10"}, ["'num_rounds' is not supported", "num_round"]),
])
def test_bad_hyperparameters_are_named(given, fragments):
    values = {"num_round": "5", **given} if "num_round" not in given and given else given
    with pytest.raises(ValidationError) as info:
        ALGORITHM.hyperparameters.validate(values)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_documented_forms_are_accepted():
    values = ALGORITHM.hyperparameters.validate({
        "num_round": "10", "objective": "multi:softprob", "num_class": "3",
        "eval_metric": "mlogloss, merror,accuracy,f1_macro,error@0.7,ndcg@3,map@2-,ndcg-,tweedie-nloglik@1.2",
        "monotone_constraints": "(1,0,-1,0)", "interaction_constraints": "[[0, 1], [2, 3]]",
        "updater": "grow_colmaker,prune", "single_precision_histogram": "True", "_kfold": "5",
        "_tuning_objective_metric": "validation:merror", "tree_method": "GPU_HIST"})
    assert values["monotone_constraints"] == [1, 0, -1, 0]
    assert values["interaction_constraints"] == [[0, 1], [2, 3]]
    assert values["tree_method"] == "gpu_hist"
    assert values["eta"] == 0.3 and values["max_depth"] == 6 and values["booster"] == "gbtree"
    assert values["_kfold"] == "5"


# ---------------------------------------------------------------------------------------------- objectives


def _labels_for(objective: str, data: kit.Dataset, iris_data: kit.Dataset, diabetes_data: kit.Dataset):
    if objective.startswith("multi:"):
        return iris_data, (iris_data.y_train, iris_data.y_validation), {"num_class": "3"}
    if objective.startswith(("binary:", "rank:")) or objective == "reg:logistic":
        return data, (data.y_train, data.y_validation), {}
    return diabetes_data, (diabetes_data.y_train, diabetes_data.y_validation), {}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_trains_and_predicts(objective, tmp_path, cancer, iris, diabetes):
    data, labels, extra = _labels_for(objective, cancer, iris, diabetes)
    log, model_dir = train(tmp_path, {"num_round": "3", "objective": objective, **extra},
                           csv_channels(tmp_path, data, labels=labels))
    lines = round_lines(log)
    assert len(lines) == 3 and "\ttrain-" in lines[0] and "\tvalidation-" in lines[0], log
    predictor = ALGORITHM.load(model_dir)
    payload, content_type = predictor.invoke(csv_body(data.x_validation[:4]), "text/csv", "text/csv")
    assert content_type == "text/csv"
    rows = payload.decode().splitlines()
    assert len(rows) == 4
    if objective == "multi:softprob":
        assert all(len(row.split(",")) == 3 for row in rows)
    assert booster(model_dir).num_boosted_rounds() == 3


def test_rank_objective_uses_libsvm_query_ids(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for qid in (3, 1, 2):  # not sorted: rows are grouped by query before training
        for _ in range(20):
            x = rng.normal(size=4)
            relevance = int(np.clip(round(x[0] + 1), 0, 3))
            lines.append(f"{relevance} qid:{qid} " + " ".join(f"{j + 1}:{v:.6g}" for j, v in enumerate(x)))
    path = tmp_path / "rank.libsvm"
    path.write_text("\n".join(lines) + "\n")
    log, model_dir = train(tmp_path, {"num_round": "5", "objective": "rank:ndcg", "eval_metric": "ndcg@5"},
                           {"train": Channel("train", "text/libsvm", [path])})
    assert "train-ndcg@5:" in log
    assert booster(model_dir).num_features() == 4


# ---------------------------------------------------------------------------------------------- content types


def _libsvm(path: Path, features: np.ndarray, labels: np.ndarray, *, base: int = 1,
            weights: np.ndarray | None = None) -> Path:
    with path.open("w") as f:
        for i, row in enumerate(features):
            head = f"{labels[i]:g}" + (f":{weights[i]:g}" if weights is not None else "")
            f.write(head + " " + " ".join(f"{j + base}:{v:.10g}" for j, v in enumerate(row)) + "\n")
    return path


@pytest.mark.parametrize("content_type", ["", "text/libsvm", "text/x-libsvm", "libsvm"])
def test_libsvm_is_the_default_content_type(content_type, tmp_path, cancer):
    channels = {
        "train": Channel("train", content_type, [_libsvm(tmp_path / "t.libsvm", cancer.x_train, cancer.y_train)]),
        "validation": Channel("validation", content_type,
                              [_libsvm(tmp_path / "v.libsvm", cancer.x_validation, cancer.y_validation)])}
    log, model_dir = train(tmp_path, {"num_round": "10", "objective": "binary:logistic"}, channels)
    assert "validation-logloss:" in round_lines(log)[-1]
    model = booster(model_dir)
    assert model.num_features() == 30  # 1-based files: no empty feature 0
    predictor = ALGORITHM.load(model_dir)
    features = cancer.x_validation[:5]
    by_csv, _ = predictor.invoke(csv_body(features), "text/csv", "text/csv")
    by_libsvm, _ = predictor.invoke(kit.encode_request(features, "text/libsvm"), "text/libsvm", "text/csv")
    assert by_csv == by_libsvm
    expected = model.inplace_predict(features.astype(np.float32))
    assert by_csv.decode() == "".join(str(v) + "\n" for v in expected)  # float32's shortest repr


def test_zero_based_libsvm_keeps_its_indices(tmp_path, cancer):
    path = _libsvm(tmp_path / "t.libsvm", cancer.x_train, cancer.y_train, base=0)
    _, model_dir = train(tmp_path, {"num_round": "5", "objective": "binary:logistic"},
                         {"train": Channel("train", "text/libsvm", [path])})
    predictor = ALGORITHM.load(model_dir)
    features = cancer.x_validation[:3]
    zero_based = " \n".join("0 " + " ".join(f"{j}:{v:.10g}" for j, v in enumerate(row)) for row in features)
    by_libsvm, _ = predictor.invoke(zero_based.encode(), "text/libsvm", "text/csv")
    by_csv, _ = predictor.invoke(csv_body(features), "text/csv", "text/csv")
    assert by_libsvm == by_csv


def test_libsvm_weights_are_instance_weights(tmp_path, cancer):
    weights = np.where(cancer.y_train == 1, 3.0, 0.5)
    path = _libsvm(tmp_path / "t.libsvm", cancer.x_train, cancer.y_train, weights=weights)
    _, model_dir = train(tmp_path, {"num_round": "5", "objective": "binary:logistic"},
                         {"train": Channel("train", "text/libsvm", [path])})
    direct = xgb.train({"objective": "binary:logistic", "nthread": 1},
                       xgb.DMatrix(cancer.x_train.astype(np.float32), label=cancer.y_train, weight=weights), 5)
    features = cancer.x_validation.astype(np.float32)
    np.testing.assert_array_equal(booster(model_dir).inplace_predict(features), direct.inplace_predict(features))


@pytest.mark.parametrize("content_type", ["application/x-parquet", "parquet"])
def test_parquet_label_first(content_type, tmp_path, cancer):
    def write(path: Path, features: np.ndarray, labels: np.ndarray) -> Path:
        columns = {"label": labels} | {f"f{j}": features[:, j] for j in range(features.shape[1])}
        pq.write_table(pa.table(columns), path)
        return path

    channels = {"train": Channel("train", content_type, [write(tmp_path / "t.parquet", cancer.x_train,
                                                               cancer.y_train)]),
                "validation": Channel("validation", content_type, [write(tmp_path / "v.parquet",
                                                                         cancer.x_validation,
                                                                         cancer.y_validation)])}
    log, _ = train(tmp_path, {"num_round": "30", "objective": "binary:logistic", "eval_metric": "auc"}, channels)
    assert extract_metrics(log.splitlines(), ALGORITHM.metrics)["validation:auc"] > 0.97


def test_csv_weights_column(tmp_path, cancer):
    weights = np.where(cancer.y_train == 1, 2.0, 1.0)
    rows = np.column_stack([cancer.y_train, weights, cancer.x_train])
    path = tmp_path / "train.csv"
    np.savetxt(path, rows, delimiter=",", fmt="%.10g")
    _, model_dir = train(tmp_path, {"num_round": "5", "objective": "binary:logistic", "csv_weights": "1"},
                         {"train": Channel("train", "text/csv", [path])})
    direct = xgb.train({"objective": "binary:logistic", "nthread": 1},
                       xgb.DMatrix(cancer.x_train.astype(np.float32), label=cancer.y_train, weight=weights), 5)
    features = cancer.x_validation.astype(np.float32)
    model = booster(model_dir)
    assert model.num_features() == 30
    np.testing.assert_array_equal(model.inplace_predict(features), direct.inplace_predict(features))


def test_csv_label_size_other_than_one_is_refused(tmp_path, cancer):
    channels = csv_channels(tmp_path, cancer, validation=False)
    channels["train"].params = {"label_size": "0"}
    with pytest.raises(DataError, match=r"label_size=0.*label_size=1"):
        train(tmp_path, {"num_round": "2"}, channels)


def test_recordio_protobuf_is_refused_clearly(tmp_path, cancer):
    channels = csv_channels(tmp_path, cancer, validation=False, content_type="application/x-recordio-protobuf")
    with pytest.raises(DataError, match=r"recordIO-protobuf\) is not supported"):
        train(tmp_path, {"num_round": "2"}, channels)


def test_malformed_csv_names_the_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("1,0.5,0.25\n0,0.1,0.2\n1,abc,0.3\n")
    with pytest.raises(DataError, match=r"Channel 'train'.*line 3, column 2: 'abc' is not a number"):
        train(tmp_path, {"num_round": "2"}, {"train": Channel("train", "text/csv", [path])})


@pytest.mark.parametrize(("objective", "extra", "bad_label", "fragment"), [
    ("binary:logistic", {}, 2.0, "needs labels between 0 and 1, but the label 2 in row 5"),
    ("binary:hinge", {}, 0.5, "needs labels 0 or 1, but the label 0.5 in row 5"),
    ("multi:softprob", {"num_class": "2"}, 2.0, "from 0 to 1 (num_class=2), but the label 2 in row 5"),
    ("multi:softmax", {"num_class": "3"}, 1.5, "the label 1.5 in row 5 is outside"),
    ("count:poisson", {}, -1.0, "needs labels non-negative, but the label -1 in row 5"),
    ("reg:gamma", {}, 0.0, "needs labels positive, but the label 0 in row 5"),
])
def test_labels_outside_the_objective_range(objective, extra, bad_label, fragment, tmp_path, cancer):
    labels = cancer.y_train.copy()
    labels[4] = bad_label
    if objective == "reg:gamma":
        labels[labels == 0] = 0.5
        labels[4] = bad_label
    channels = csv_channels(tmp_path, cancer, validation=False, labels=(labels, cancer.y_validation))
    with pytest.raises(DataError) as info:
        train(tmp_path, {"num_round": "2", "objective": objective, **extra}, channels)
    assert fragment in str(info.value) and "'train'" in str(info.value)


def test_missing_labels_are_refused(tmp_path):
    path = tmp_path / "t.libsvm"
    path.write_text("1 1:0.5\nnan 1:0.2\n")
    with pytest.raises(DataError, match="label in row 2 is nan"):
        train(tmp_path, {"num_round": "2"}, {"train": Channel("train", "libsvm", [path])})


def test_validation_with_other_columns_is_refused(tmp_path, cancer):
    channels = csv_channels(tmp_path, cancer)
    kit.write_csv(tmp_path / "validation.csv", cancer.x_validation[:, :10], cancer.y_validation)
    with pytest.raises(DataError, match="validation channel has 10 feature column.*train channel has 30"):
        train(tmp_path, {"num_round": "2"}, channels)


# ---------------------------------------------------------------------------------------------- metrics


def test_native_lines_every_round(tmp_path, cancer):
    log, _ = train(tmp_path, {"num_round": "40", "objective": "binary:logistic", "eval_metric": "auc"},
                   csv_channels(tmp_path, cancer))
    lines = round_lines(log)
    assert len(lines) == 40
    for number, line in enumerate(lines):
        assert re.fullmatch(rf"\[{number}\]\ttrain-auc:[01]\.[0-9]{{5}}\tvalidation-auc:[01]\.[0-9]{{5}}", line)
    assert extract_metrics(log.splitlines(), ALGORITHM.metrics)["validation:auc"] > 0.97


def test_sklearn_metrics_in_the_same_lines(tmp_path, iris):
    log, model_dir = train(tmp_path, {"num_round": "10", "objective": "multi:softprob", "num_class": "3",
                                      "eval_metric": "mlogloss,accuracy,f1,balanced_accuracy,precision_micro"},
                           csv_channels(tmp_path, iris))
    last = round_lines(log)[-1]
    assert re.match(r"\[9\]\ttrain-mlogloss:\S+\ttrain-accuracy:\S+\ttrain-f1:\S+\ttrain-balanced_accuracy:\S+"
                    r"\ttrain-precision_micro:\S+\tvalidation-mlogloss:", last)
    values = extract_metrics(log.splitlines(), ALGORITHM.metrics)
    predicted = booster(model_dir).inplace_predict(iris.x_validation.astype(np.float32)).argmax(axis=1)
    accuracy = float((predicted == iris.y_validation).mean())
    assert values["validation:accuracy"] == pytest.approx(accuracy, abs=1e-5)
    assert values["validation:precision_micro"] == pytest.approx(accuracy, abs=1e-5)
    assert values["validation:accuracy"] > 0.85


def test_regression_metrics(tmp_path, diabetes):
    log, model_dir = train(tmp_path, {"num_round": "20", "eta": "0.1", "max_depth": "3",
                                      "eval_metric": "rmse,mse,r2,mae"}, csv_channels(tmp_path, diabetes))
    values = extract_metrics(log.splitlines(), ALGORITHM.metrics)
    assert values["validation:mse"] == pytest.approx(values["validation:rmse"] ** 2, rel=1e-4)
    predicted = booster(model_dir).inplace_predict(diabetes.x_validation.astype(np.float32))
    from sklearn.metrics import r2_score

    assert values["validation:r2"] == pytest.approx(r2_score(diabetes.y_validation, predicted), abs=1e-4)
    assert values["validation:r2"] > 0.2


def test_tweedie_nloglik_is_reported_under_its_plain_name(tmp_path, diabetes):
    log, _ = train(tmp_path, {"num_round": "3", "objective": "reg:tweedie", "tweedie_variance_power": "1.3",
                              "eval_metric": "tweedie-nloglik"}, csv_channels(tmp_path, diabetes))
    assert "validation:tweedie-nloglik" in extract_metrics(log.splitlines(), ALGORITHM.metrics)


def test_early_stopping_keeps_the_best_round(tmp_path, cancer):
    log, model_dir = train(tmp_path, {"num_round": "300", "objective": "binary:logistic", "eval_metric": "logloss",
                                      "early_stopping_rounds": "5", "eta": "0.5"}, csv_channels(tmp_path, cancer))
    rounds = len(round_lines(log))
    assert rounds < 300
    model = booster(model_dir)
    best = int(model.attr("best_iteration"))
    assert rounds == best + 6
    assert model.num_boosted_rounds() == best + 1
    assert f"Early stopping: the best round was {best}" in log


def test_tuning_objective_metric_drives_early_stopping(tmp_path, cancer):
    log, model_dir = train(tmp_path, {"num_round": "300", "objective": "binary:logistic",
                                      "eval_metric": "logloss,error", "early_stopping_rounds": "4",
                                      "_tuning_objective_metric": "validation:auc"},
                           csv_channels(tmp_path, cancer))
    lines = round_lines(log)
    assert "\tvalidation-auc:" in lines[0]  # the tuning metric is always reported
    aucs = [float(re.search(r"\tvalidation-auc:(\S+)", line).group(1)) for line in lines]
    best = int(booster(model_dir).attr("best_iteration"))
    assert aucs[best] == max(aucs) and len(lines) == best + 5


def test_early_stopping_without_validation_runs_all_rounds(tmp_path, cancer):
    log, _ = train(tmp_path, {"num_round": "6", "early_stopping_rounds": "2", "objective": "binary:logistic"},
                   csv_channels(tmp_path, cancer, validation=False))
    assert len(round_lines(log)) == 6 and "early_stopping_rounds needs a validation channel" in log


# ---------------------------------------------------------------------------------------------- parameters


def _same_as_direct(model_dir: Path, params: dict, data: kit.Dataset, rounds: int) -> None:
    """The artifact predicts exactly as xgboost.train called directly with `params` (one thread)."""
    direct = xgb.train({**params, "nthread": 1}, xgb.DMatrix(data.x_train.astype(np.float32), label=data.y_train),
                       rounds)
    features = data.x_validation.astype(np.float32)
    np.testing.assert_array_equal(booster(model_dir).inplace_predict(features), direct.inplace_predict(features))


def test_only_set_hyperparameters_reach_xgboost(tmp_path, diabetes):
    _, model_dir = train(tmp_path, {"num_round": "3", "max_depth": "3", "lambda": "2.5"},
                         csv_channels(tmp_path, diabetes, validation=False))
    _same_as_direct(model_dir, {"objective": "reg:squarederror", "max_depth": 3, "lambda": 2.5}, diabetes, 3)
    # base_score was not given: XGBoost 3 estimates it from the labels (the mean, for squared error).
    config = json.loads(booster(model_dir).save_config())
    base_score = float(config["learner"]["learner_model_param"]["base_score"].strip("[]"))
    assert base_score == pytest.approx(diabetes.y_train.mean(), rel=1e-3)
    _, model_dir = train(tmp_path / "given", {"num_round": "2", "base_score": "0.5"},
                         csv_channels(tmp_path, diabetes, validation=False))
    config = json.loads(booster(model_dir).save_config())
    assert float(config["learner"]["learner_model_param"]["base_score"].strip("[]")) == 0.5


def test_raw_strings_and_validated_values_train_the_same_model(tmp_path, cancer):
    hp = {"num_round": "4", "objective": "binary:logistic", "max_depth": "4", "eta": "0.2", "seed": "5"}
    _, a = train(tmp_path / "a", hp, csv_channels(tmp_path, cancer), raw=True)
    _, b = train(tmp_path / "b", hp, csv_channels(tmp_path, cancer))
    assert (a / MODEL_FILE).read_bytes() == (b / MODEL_FILE).read_bytes()


def test_learning_rate_is_an_alias_of_eta(tmp_path, cancer):
    _, a = train(tmp_path / "a", {"num_round": "4", "objective": "binary:logistic", "eta": "0.1"},
                 csv_channels(tmp_path, cancer))
    _, b = train(tmp_path / "b", {"num_round": "4", "objective": "binary:logistic", "learning_rate": "0.1"},
                 csv_channels(tmp_path, cancer))
    features = cancer.x_validation.astype(np.float32)
    np.testing.assert_array_equal(booster(a).inplace_predict(features), booster(b).inplace_predict(features))


def test_gpu_and_obsolete_settings_run_on_cpu_with_a_note(tmp_path, cancer):
    log, model_dir = train(tmp_path, {"num_round": "3", "objective": "binary:logistic", "tree_method": "gpu_hist",
                                      "predictor": "gpu_predictor", "single_precision_histogram": "true",
                                      "rate_drop": "0.1", "_kfold": "3"}, csv_channels(tmp_path, cancer))
    assert "tree_method=gpu_hist runs as tree_method=hist" in log
    assert "predictor=gpu_predictor is ignored" in log
    assert "single_precision_histogram=true is ignored" in log
    assert "rate_drop=0.1 is ignored: it applies to booster=dart only" in log
    assert "_kfold" in log
    assert len(round_lines(log)) == 3


def test_dart_monotone_and_interaction_constraints(tmp_path, cancer):
    monotone = "(" + ",".join(["1"] + ["0"] * 29) + ")"
    log, model_dir = train(tmp_path, {"num_round": "4", "objective": "binary:logistic", "booster": "dart",
                                      "rate_drop": "0.2", "one_drop": "1", "monotone_constraints": monotone,
                                      "interaction_constraints": "[[0, 1, 2], [3, 4]]"},
                           csv_channels(tmp_path, cancer))
    assert "Note:" not in log
    assert json.loads((model_dir / MODEL_FILE).read_bytes())["learner"]["gradient_booster"]["name"] == "dart"
    _same_as_direct(model_dir, {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.2, "one_drop": 1,
                                "monotone_constraints": monotone,
                                "interaction_constraints": "[[0, 1, 2], [3, 4]]"}, cancer, 4)


def test_xgboost_refusals_become_data_errors(tmp_path, cancer):
    # rank:map's metric needs binary relevance labels; xgboost refuses, and the message stays readable.
    labels = cancer.y_train * 2
    channels = csv_channels(tmp_path, cancer, validation=False, labels=(labels, cancer.y_validation))
    with pytest.raises(DataError) as info:
        train(tmp_path, {"num_round": "2", "objective": "rank:map"}, channels)
    assert "XGBoost could not train" in str(info.value) and "Stack trace" not in str(info.value)


def test_a_train_channel_is_needed(tmp_path, cancer):
    channels = csv_channels(tmp_path, cancer)
    del channels["train"]
    with pytest.raises(DataError, match="'train' channel"):
        train(tmp_path, {"num_round": "2"}, channels)


# ---------------------------------------------------------------------------------------------- artifact


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory, cancer) -> Path:
    tmp_path = tmp_path_factory.mktemp("binary")
    _, model_dir = train(tmp_path, {"num_round": "10", "objective": "binary:logistic"},
                         csv_channels(tmp_path, cancer))
    return model_dir


@pytest.fixture(scope="module")
def softprob_model(tmp_path_factory, iris) -> Path:
    tmp_path = tmp_path_factory.mktemp("softprob")
    _, model_dir = train(tmp_path, {"num_round": "5", "objective": "multi:softprob", "num_class": "3"},
                         csv_channels(tmp_path, iris))
    return model_dir


def test_artifact_is_xgboost_json(binary_model):
    raw = (binary_model / MODEL_FILE).read_bytes()
    document = json.loads(raw)
    assert document["learner"]["objective"]["name"] == "binary:logistic"
    assert sorted(p.name for p in binary_model.iterdir()) == [MODEL_FILE]


def test_pickled_artifacts_are_refused(tmp_path):
    (tmp_path / MODEL_FILE).write_bytes(b"\x80\x04\x95" + b"\x00" * 20)
    with pytest.raises(ValueError, match="never loads pickles"):
        ALGORITHM.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=MODEL_FILE):
        ALGORITHM.load(tmp_path / "empty")


def test_predictor_runs_one_thread(binary_model):
    predictor = ALGORITHM.load(binary_model)
    config = json.loads(predictor.booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"


# ---------------------------------------------------------------------------------------------- inference


def test_binary_formats_are_exact(binary_model, cancer):
    predictor = ALGORITHM.load(binary_model)
    features = cancer.x_validation[:3]
    scores = booster(binary_model).inplace_predict(features.astype(np.float32))
    body = csv_body(features)
    assert predictor.invoke(body, "text/csv", "text/csv") == \
           ("".join(str(s) + "\n" for s in scores).encode(), "text/csv")
    payload, content_type = predictor.invoke(body, "text/csv", "application/json")
    assert content_type == "application/json"
    assert json.loads(payload) == {"predictions": [{"score": float(s)} for s in scores]}
    payload, content_type = predictor.invoke(body, "text/csv; charset=utf-8", "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert payload == b"".join(json.dumps({"score": float(s)}).encode() + b"\n" for s in scores)


def test_softprob_formats_are_exact(softprob_model, iris):
    predictor = ALGORITHM.load(softprob_model)
    features = iris.x_validation[:2]
    probabilities = booster(softprob_model).inplace_predict(features.astype(np.float32))
    payload, _ = predictor.invoke(csv_body(features), "text/csv", "text/csv")
    assert payload.decode() == "".join(",".join(str(v) for v in row) + "\n" for row in probabilities)
    payload, _ = predictor.invoke(csv_body(features), "text/csv", "application/json")
    assert json.loads(payload) == {"predictions": [{"score": [float(v) for v in row]} for row in probabilities]}


def test_csv_request_variants(binary_model, cancer):
    predictor = ALGORITHM.load(binary_model)
    features = cancer.x_validation[:20]
    expected, _ = predictor.invoke(csv_body(features), "text/csv", "text/csv")
    tabbed = "\n".join("\t".join(f"{v:.10g}" for v in row) for row in features).encode()
    assert predictor.invoke(tabbed, "text/csv", "text/csv")[0] == expected
    padded = b"\n" + csv_body(features).replace(b"\n", b"\n\n") + b"\r\n"
    assert predictor.invoke(padded.replace(b"\r\n", b"\n"), "text/csv", "text/csv")[0] == expected
    many = np.tile(features, (200, 1))  # > 64 KiB: read with pyarrow
    big, _ = predictor.invoke(csv_body(many), "text/csv", "text/csv")
    assert big == expected * 200
    # An empty field is a missing value, as in training.
    row = csv_body(features[:1]).decode().split(",")
    row[3] = ""
    missing, _ = predictor.invoke(",".join(row).encode(), "text/csv", "text/csv")
    with_nan = features[:1].astype(np.float32).copy()
    with_nan[0, 3] = np.nan
    assert missing.decode() == str(booster(binary_model).inplace_predict(with_nan)[0]) + "\n"


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "fragments"), [
    (b"", "text/csv", "text/csv", 204, ["empty"]),
    (b"  \n", "text/csv", "text/csv", 204, ["empty"]),
    (b"1,2", "application/x-parquet", "text/csv", 415,
     ["'application/x-parquet'", "text/csv, text/libsvm, text/x-libsvm"]),
    (b"1,2", "text/csv", "application/x-recordio-protobuf", 406,
     ["'application/x-recordio-protobuf'", "text/csv, application/json, application/jsonlines"]),
    (b"1,2,3", "text/csv", "text/csv", 400, ["row 1 has 3 column(s)", "expects 30 features"]),
    (b",".join([b"1"] * 30) + b"\n" + b",".join([b"1"] * 29), "text/csv", "text/csv", 400,
     ["row 2 has 29 column(s)", "30 features"]),
    (b",".join([b"1"] * 29 + [b"high"]), "text/csv", "text/csv", 400, ["row 1, column 30", "'high'"]),
    (b"0 1:0.5 31:2", "text/libsvm", "text/csv", 400, ["feature index 31", "30 features"]),
    (b"0 1:abc", "text/libsvm", "text/csv", 400, ["line 1", "'1:abc'"]),
    (b"\xff\xfe", "text/csv", "text/csv", 400, ["not UTF-8"]),
])
def test_inference_errors(binary_model, body, content_type, accept, status, fragments):
    predictor = ALGORITHM.load(binary_model)
    with pytest.raises(InferenceError) as info:
        predictor.invoke(body, content_type, accept)
    assert info.value.status == status
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_accept_negotiation(binary_model, cancer):
    predictor = ALGORITHM.load(binary_model)
    body = csv_body(cancer.x_validation[:1])
    assert predictor.invoke(body, "text/csv", "")[1] == "text/csv"
    assert predictor.invoke(body, "text/csv", "*/*")[1] == "text/csv"
    assert predictor.invoke(body, "text/csv", "application/json; charset=utf-8")[1] == "application/json"
    assert predictor.invoke(body, "text/csv", "application/xml, application/jsonlines")[1] == \
           "application/jsonlines"
    # No Content-Type: LibSVM, as the container assumes.
    libsvm = kit.encode_request(cancer.x_validation[:1], "text/libsvm")
    assert predictor.invoke(libsvm, "", "text/csv")[0] == predictor.invoke(body, "text/csv", "text/csv")[0]


def test_large_csv_bodies_read_from_bytes_keep_the_careful_errors(binary_model, cancer):
    """Bodies over 64 KiB are parsed straight from bytes; anything unusual still gets the exact answer."""
    predictor = ALGORITHM.load(binary_model)
    lines = csv_body(np.tile(cancer.x_validation[:20], (200, 1))).splitlines(keepends=True)
    expected, _ = predictor.invoke(b"".join(lines), "text/csv", "text/csv")
    assert len(expected.splitlines()) == len(lines)
    assert predictor.invoke(b"\n" + b"".join(lines) + b"\n\n", "text/csv", "text/csv")[0] == expected
    for row, (bad, fragment) in enumerate([(b"1,2,3\n", "has 3 column(s)"), (b"\xff,1\n", "not UTF-8")], start=7):
        broken = lines[:row - 1] + [bad] + lines[row:]
        with pytest.raises(InferenceError) as info:
            predictor.invoke(b"".join(broken), "text/csv", "text/csv")
        assert info.value.status == 400 and fragment in info.value.message
    missing = lines[:]
    missing[4] = b"," + missing[4].split(b",", 1)[1]
    values = np.tile(cancer.x_validation[:20], (200, 1)).astype(np.float32)
    values[4, 0] = np.nan
    scores = booster(binary_model).inplace_predict(values)
    assert predictor.invoke(b"".join(missing), "text/csv", "text/csv")[0].splitlines()[4].decode() == str(scores[4])
