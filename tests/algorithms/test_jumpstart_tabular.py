"""LightGBM and CatBoost as SageMaker JumpStart runs them: the data layout, the task, metrics, the inference
contract; in process for the details, then through a real server for the user's whole path."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from builtin_flow import channel, csv_text, deploy, image, invoke_json, metrics, model_error, put, train
from sklearn.metrics import roc_auc_score

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.catboost.algorithm import CatBoostClassification, CatBoostRegression
from sagelab.algorithms.lightgbm.algorithm import LightGBMClassification, LightGBMRegression
from sagelab.testing import algorithm_kit as kit

LIGHTGBM = image("lightgbm-classification-model")
CATBOOST_REGRESSION = image("catboost-regression-model")


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def context(tmp_path: Path, hp: dict[str, str], channels: dict[str, dict[str, str]]) -> TrainingContext:
    """Channels as {channel name: {key relative to the channel's S3 prefix: file content}}."""
    made = {}
    for name, objects in channels.items():
        files, keys = [], []
        for index, (key, content) in enumerate(objects.items()):
            path = tmp_path / "input" / name / f"{index:05d}-{key.rsplit('/', 1)[-1]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            files.append(path)
            keys.append(key)
        made[name] = Channel(name, "text/csv", files, keys=keys)
    return TrainingContext(hp, made, tmp_path / "model", tmp_path / "output", io.StringIO())


def wine_with_a_category() -> tuple[np.ndarray, np.ndarray]:
    """Wine, with column 1 replaced by a categorical code (the alcohol level in five bands)."""
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = x.copy()
    x[:, 1] = np.digitize(x[:, 0], np.quantile(x[:, 0], [0.2, 0.4, 0.6, 0.8]))
    return x, y.astype(float)


# -- declarations -------------------------------------------------------------------------------------------

LIGHTGBM_DG = {"num_boost_round", "early_stopping_rounds", "metric", "learning_rate", "num_leaves", "feature_fraction",
               "bagging_fraction", "bagging_freq", "max_depth", "min_data_in_leaf", "max_delta_step", "lambda_l1",
               "lambda_l2", "boosting", "min_gain_to_split", "scale_pos_weight", "tree_learner",
               "feature_fraction_bynode", "is_unbalance", "max_bin", "tweedie_variance_power", "num_threads",
               "verbosity"}
CATBOOST_DG = {"iterations", "early_stopping_rounds", "eval_metric", "learning_rate", "depth", "l2_leaf_reg",
               "random_strength", "max_leaves", "rsm", "sampling_frequency", "min_data_in_leaf", "bagging_temperature",
               "boosting_type", "scale_pos_weight", "max_bin", "grow_policy", "random_seed", "thread_count", "verbose"}


def test_declared_surface():
    lgb, cat = LightGBMClassification(), CatBoostRegression()
    assert lgb.image_repositories == ("lightgbm-classification-model",)
    assert LightGBMRegression().image_repositories == ("lightgbm-regression-model",)
    assert CatBoostClassification().image_repositories == ("catboost-classification-model",)
    assert [(c.name, c.required, c.aliases) for c in lgb.channels] == [("train", True, ("training",)),
                                                                        ("validation", False, ())]
    assert set(lgb.hyperparameters.by_name()) >= LIGHTGBM_DG
    assert set(cat.hyperparameters.by_name()) >= CATBOOST_DG
    defaults = lgb.hyperparameters.validate({})
    assert (defaults["num_boost_round"], defaults["early_stopping_rounds"], defaults["num_leaves"],
            defaults["max_depth"], defaults["min_data_in_leaf"], defaults["is_unbalance"]) == (100, 10, 64, 6, 3, False)
    defaults = cat.hyperparameters.validate({})
    assert (defaults["iterations"], defaults["learning_rate"], defaults["depth"], defaults["random_seed"],
            defaults["grow_policy"]) == (500, 0.009, 6, 1, "SymmetricTree")
    # The SDK's script-mode keys and JumpStart's "True"/"False" strings are accepted.
    lgb.hyperparameters.validate({"is_unbalance": "True", "sagemaker_program": "transfer_learning.py"})
    names = {m.name: m.direction for m in lgb.metrics}
    assert names["validation:auc"] == "Maximize" and names["validation:multi_logloss"] == "Minimize"
    assert {m.name for m in cat.metrics} >= {"validation:RMSE", "validation:AUC", "validation:F1"}


# -- training data --------------------------------------------------------------------------------------------


def test_jumpstart_folders_and_categorical_index(tmp_path):
    x, y = wine_with_a_category()
    order = np.random.default_rng(0).permutation(len(y))
    train_rows, valid_rows = order[:140], order[140:]
    objects = {"train/data.csv": csv_text(x[train_rows], y[train_rows]),
               "validation/data.csv": csv_text(x[valid_rows], y[valid_rows]),
               "categorical_index.json": json.dumps({"cat_index_list": [2]})}
    for algorithm, hp in ((LightGBMClassification(), {"num_boost_round": "50"}),
                          (CatBoostClassification(), {"iterations": "60", "learning_rate": "0.2"})):
        ctx = context(tmp_path / algorithm.name, hp, {"training": objects})
        algorithm.train(ctx)
        log = ctx.log.getvalue()
        assert "multiclass on 140 training and 38 validation rows with 13 features (1 categorical)" in log
        info = json.loads((ctx.model_dir / "model-info.json").read_text())
        assert info["categorical_features"] == [1] and info["classes"] == [0.0, 1.0, 2.0]
        answer = json.loads(algorithm.load(ctx.model_dir).invoke(
            csv_text(x[valid_rows]).encode(), "text/csv", "application/json")[0])
        probabilities = np.array(answer["probabilities"])
        assert probabilities.shape == (38, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
        assert np.mean(probabilities.argmax(axis=1) == y[valid_rows]) >= 0.9


def test_without_validation_data_20_percent_is_held_out(tmp_path):
    data = kit.diabetes()
    ctx = context(tmp_path, {"num_boost_round": "20"}, {"train": {"part.csv": csv_text(data.x_train, data.y_train)}})
    LightGBMRegression().train(ctx)
    assert "No validation data: 71 of the 354 training rows (20%) are held out for validation." in ctx.log.getvalue()
    assert "validation's rmse: " in ctx.log.getvalue()


@pytest.mark.parametrize("algorithm, objects, fragment", [
    (LightGBMClassification, {"d.csv": "0.5,1,2\n1,2,3\n0,3,1\n"}, "must be non-negative integers"),
    (LightGBMClassification, {"d.csv": "1,1,2\n1,2,3\n"}, "at least two classes"),
    (CatBoostClassification, {"d.csv": "0,1,2\n1,2,3\n", "categorical_index.json": '{"cat_index_list": [3]}'},
     "column index 3 is out of range"),
    (CatBoostClassification, {"d.csv": "0,1.5,2\n1,2,3\n", "categorical_index.json": '{"cat_index_list": [1]}'},
     "categorical column 1 holds 1.5"),
    (LightGBMClassification, {"d.csv": "0,1,2\n1,2,3\n", "categorical_index.json": '{"cats": [1]}'},
     "cat_index_list"),
    (LightGBMRegression, {"train/d.csv": "0,1,2\n1,2,3\n", "validation/d.csv": "0,1\n1,2\n"}, "columns"),
    (LightGBMClassification, {"train/d.csv": "0,1,2\n1,2,3\n", "validation/d.csv": "2,1,2\n"},
     "a class the training data does not have"),
    (LightGBMRegression, {"d.csv": "1,a,2\n"}, "'a' is not a number"),
    (LightGBMRegression, {"categorical_index.json": '{"cat_index_list": []}'}, "holds no CSV training data"),
])
def test_bad_training_data_is_named(tmp_path, algorithm, objects, fragment):
    ctx = context(tmp_path, {}, {"train": objects})
    with pytest.raises(DataError, match=re.escape(fragment)):
        algorithm().train(ctx)


def test_metric_must_fit_the_problem(tmp_path):
    data = kit.breast_cancer()
    ctx = context(tmp_path, {"metric": "rmse"}, {"train": {"d.csv": csv_text(data.x_train, data.y_train)}})
    with pytest.raises(DataError, match="metric=rmse does not apply to binary problems"):
        LightGBMClassification().train(ctx)


# -- inference ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory):
    data = kit.breast_cancer()
    tmp = tmp_path_factory.mktemp("lgb")
    ctx = context(tmp, {"num_boost_round": "30"}, {"train": {"d.csv": csv_text(data.x_train, data.y_train)},
                                                   "validation": {"v.csv": csv_text(data.x_validation,
                                                                                    data.y_validation)}})
    LightGBMClassification().train(ctx)
    return LightGBMClassification().load(ctx.model_dir), data


def test_inference_contract(binary_model):
    predictor, data = binary_model
    body = csv_text(data.x_validation[:3]).encode()
    plain = json.loads(predictor.invoke(body, "text/csv", "")[0])
    assert list(plain) == ["probabilities"] and len(plain["probabilities"][0]) == 2
    verbose = json.loads(predictor.invoke(body, "text/csv", "application/json;verbose")[0])
    assert verbose["labels"] == [0, 1]
    assert verbose["predicted_label"] == [int(np.argmax(p)) for p in plain["probabilities"]]
    missing = csv_text(data.x_validation[:1]).replace(csv_text(data.x_validation[:1]).split(",")[3], "", 1)
    assert len(json.loads(predictor.invoke(missing.encode(), "text/csv", "application/json")[0])["probabilities"]) == 1
    for body_, content_type, accept, status, fragment in (
            (b'{"instances": []}', "application/json", "application/json", 415, "text/csv"),
            (body, "text/csv", "text/csv", 406, "application/json"),
            (b"1,2,3", "text/csv", "application/json", 400, "expects 30 features"),
            (b"", "text/csv", "application/json", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_, content_type, accept)
        assert info.value.status == status and fragment in str(info.value)


# -- the user's path ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lightgbm_jumpstart_job_endpoint_and_tuning_regex(sm, s3, rt, bucket):
    data = kit.breast_cancer()
    put(s3, bucket, "tabular/train/data.csv", csv_text(data.x_train, data.y_train))
    put(s3, bucket, "tabular/validation/data.csv", csv_text(data.x_validation, data.y_validation))
    desc = train(sm, bucket, LIGHTGBM, {"num_boost_round": "60", "learning_rate": "0.1", "sagemaker_program":
                                        "transfer_learning.py"},
                 [channel("training", f"s3://{bucket}/tabular/")],
                 metric_definitions=[{"Name": "binary_logloss", "Regex": "binary_logloss: ([0-9\\.]+)"}])
    found = metrics(desc)
    assert found["binary_logloss"] == found["validation:binary_logloss"] < 0.2
    endpoint = deploy(sm, LIGHTGBM, desc)
    answer = invoke_json(rt, endpoint, csv_text(data.x_validation), "text/csv")
    probabilities = np.array(answer["probabilities"])
    assert np.mean(probabilities.argmax(axis=1) == data.y_validation) >= 0.92  # gradient boosting's usual 0.92-0.97
    assert roc_auc_score(data.y_validation, probabilities[:, 1]) >= 0.97
    verbose = invoke_json(rt, endpoint, csv_text(data.x_validation[:2]), "text/csv", "application/json;verbose")
    assert verbose["labels"] == [0, 1] and len(verbose["predicted_label"]) == 2
    status, message = model_error(rt, endpoint, json.dumps({"instances": [{"features": [1.0] * 30}]}),
                                  "application/json")
    assert status == 415 and "text/csv" in message
    status, message = model_error(rt, endpoint, "1,2,3", "text/csv")
    assert status == 400 and "30 features" in message
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_catboost_regression_job_and_endpoint(sm, s3, rt, bucket):
    data = kit.diabetes()
    train_uri = put(s3, bucket, "cb/train/part.csv", csv_text(data.x_train, data.y_train))
    valid_uri = put(s3, bucket, "cb/validation/part.csv", csv_text(data.x_validation, data.y_validation))
    desc = train(sm, bucket, CATBOOST_REGRESSION, {"iterations": "300", "learning_rate": "0.05"},
                 [channel("train", train_uri), channel("validation", valid_uri)],
                 metric_definitions=[{"Name": "RMSE", "Regex": "bestTest = ([0-9\\.]+)"}])
    found = metrics(desc)
    assert found["RMSE"] == pytest.approx(found["validation:RMSE"], rel=1e-6)
    assert found["validation:R2"] > 0.35
    endpoint = deploy(sm, CATBOOST_REGRESSION, desc)
    prediction = np.array(invoke_json(rt, endpoint, csv_text(data.x_validation), "text/csv")["prediction"])
    rmse = float(np.sqrt(np.mean((prediction - data.y_validation) ** 2)))
    assert rmse == pytest.approx(found["validation:RMSE"], rel=1e-6)
    sm.delete_endpoint(EndpointName=endpoint)
