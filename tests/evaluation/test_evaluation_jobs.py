"""The evaluator image end to end: processing jobs that score a trained model and cross-validate an algorithm,
checked figure by figure against scikit-learn and xgboost called directly on the same data."""

from __future__ import annotations

import io
import json
import tarfile
import time

import numpy as np
import pytest
import xgboost as xgb
from conftest import unique
from helpers import IMAGES, job_request, upload_breast_cancer, wait_job
from sklearn import metrics as sk
from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold

EVALUATOR = "sagelab-evaluator:latest"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(sm, s3, tmp_path_factory):
    bucket = unique("evaluation")
    s3.create_bucket(Bucket=bucket)
    splits = upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("bc"))
    job = unique("xgb")
    sm.create_training_job(**job_request(job, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "30", "max_depth": "3"}))
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    return {"bucket": bucket, "splits": splits, "artifact": desc["ModelArtifacts"]["S3ModelArtifacts"]}


def evaluator_request(name: str, inputs: dict[str, str], output: str, environment: dict[str, str],
                      arguments: list[str] | None = None) -> dict:
    request = {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": EVALUATOR},
        "RoleArn": ROLE,
        "Environment": environment,
        "ProcessingInputs": [{"InputName": input_name, "S3Input": {
            "S3Uri": uri, "LocalPath": f"/opt/ml/processing/{input_name}", "S3DataType": "S3Prefix",
            "S3InputMode": "File"}} for input_name, uri in inputs.items()],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
    }
    if arguments:
        request["AppSpecification"]["ContainerArguments"] = arguments
    return request


def run(sm, request: dict, timeout: float = 240) -> dict:
    sm.create_processing_job(**request)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
        if desc["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
            return desc
        time.sleep(0.25)
    raise TimeoutError(request["ProcessingJobName"])


def read_report(s3, bucket: str, prefix: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/evaluation.json")["Body"].read())


def booster_from(s3, artifact: str) -> xgb.Booster:
    bucket, key = artifact[5:].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


@pytest.mark.slow
def test_evaluation_matches_sklearn_on_the_same_predictions(sm, s3, trained):
    bucket, test = trained["bucket"], trained["splits"]["test"]
    name = unique("evaluate")
    run(sm, evaluator_request(name, {"model": trained["artifact"], "test": f"s3://{bucket}/data/test/"},
                              f"s3://{bucket}/evaluation/{name}",
                              {"algorithm_image": IMAGES["xgboost"], "bootstrap_samples": "50"}))
    report = read_report(s3, bucket, f"evaluation/{name}")
    section = report["binary_classification_metrics"]
    assert report["dataset"]["item_count"] == len(test)
    assert report["sagelab"]["problem_type"] == "BinaryClassification"

    y = test[:, 0]
    score = booster_from(s3, trained["artifact"]).predict(xgb.DMatrix(test[:, 1:].astype(np.float32)))
    predicted = (score > 0.5).astype(float)
    tn, fp, fn, tp = sk.confusion_matrix(y, predicted).ravel()
    expected = {"accuracy": sk.accuracy_score(y, predicted), "precision": sk.precision_score(y, predicted),
                "recall": sk.recall_score(y, predicted), "f1": sk.f1_score(y, predicted),
                "f2": sk.fbeta_score(y, predicted, beta=2), "specificity": tn / (tn + fp),
                "auc": sk.roc_auc_score(y, score), "pr_auc": sk.average_precision_score(y, score),
                "log_loss": sk.log_loss(y, score)}
    for metric, value in expected.items():
        assert section[metric]["value"] == pytest.approx(value, rel=1e-6), metric
        assert section[metric]["standard_deviation"] >= 0
    assert section["confusion_matrix"] == {"0": {"0": int(tn), "1": int(fp)}, "1": {"0": int(fn), "1": int(tp)}}
    fpr, tpr, _ = sk.roc_curve(y, score)
    assert section["receiver_operating_characteristic_curve"]["true_positive_rates"] == pytest.approx(tpr)

    for picture in ("confusion_matrix.png", "roc.png"):
        body = s3.get_object(Bucket=bucket, Key=f"evaluation/{name}/{picture}")["Body"].read()
        assert body.startswith(PNG) and len(body) > 5000


def fold_accuracy_and_auc(rows: np.ndarray, splitter, params: dict, rounds: int) -> tuple[list, list]:
    """What cross_val_score-style code computes with xgboost directly."""
    x, y = rows[:, 1:].astype(np.float32), rows[:, 0]
    accuracies, aucs = [], []
    for train_index, test_index in splitter.split(x, y):
        booster = xgb.train(params, xgb.DMatrix(x[train_index], label=y[train_index]), num_boost_round=rounds)
        score = booster.predict(xgb.DMatrix(x[test_index]))
        accuracies.append(sk.accuracy_score(y[test_index], score > 0.5))
        aucs.append(sk.roc_auc_score(y[test_index], score) if len(np.unique(y[test_index])) == 2 else None)
    return accuracies, aucs


@pytest.mark.slow
def test_stratified_cross_validation_reports_mean_and_spread(sm, s3, trained):
    bucket, train = trained["bucket"], trained["splits"]["train"]
    name = unique("cv")
    run(sm, evaluator_request(
        name, {"train": f"s3://{bucket}/data/train/"}, f"s3://{bucket}/cv/{name}", {},
        arguments=["--mode", "cross-validation", "--algorithm-image", IMAGES["xgboost"],
                   "--hyperparameters", json.dumps({"objective": "binary:logistic", "num_round": 8, "max_depth": 2}),
                   "--cv-strategy", "StratifiedKFold", "--folds", "4", "--seed", "11"]))
    report = read_report(s3, bucket, f"cv/{name}")
    section = report["binary_classification_metrics"]
    cv = report["sagelab"]["cross_validation"]
    assert cv["strategy"] == "StratifiedKFold" and cv["folds"] == 4 and len(cv["fold_metrics"]) == 4

    accuracies, aucs = fold_accuracy_and_auc(train, StratifiedKFold(4, shuffle=True, random_state=11),
                                             {"objective": "binary:logistic", "max_depth": 2}, 8)
    assert [f["accuracy"] for f in cv["fold_metrics"]] == pytest.approx(accuracies)
    assert section["accuracy"]["value"] == pytest.approx(np.mean(accuracies))
    assert section["accuracy"]["standard_deviation"] == pytest.approx(np.std(accuracies))
    assert section["auc"]["value"] == pytest.approx(np.mean(aucs), rel=1e-6)
    assert sum(sum(row.values()) for row in section["confusion_matrix"].values()) == len(train)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"cv/{name}/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed) == ["confusion_matrix.png", "evaluation.json",
                                                                   "roc.png"]


@pytest.mark.slow
def test_leave_one_out_and_k_fold_regression(sm, s3, trained):
    bucket = trained["bucket"]
    rows = trained["splits"]["train"][:24]
    s3.put_object(Bucket=bucket, Key="small/train.csv", Body="\n".join(
        ",".join(f"{v:.10g}" for v in row) for row in rows).encode())
    loo = unique("loo")
    run(sm, evaluator_request(loo, {"train": f"s3://{bucket}/small/"}, f"s3://{bucket}/cv/{loo}", {
        "mode": "cross-validation", "algorithm_image": IMAGES["xgboost"], "cv_strategy": "LeaveOneOut",
        "hyperparameters": json.dumps({"objective": "binary:logistic", "num_round": "3"})}))
    report = read_report(s3, bucket, f"cv/{loo}")
    accuracies, _ = fold_accuracy_and_auc(rows, LeaveOneOut(), {"objective": "binary:logistic"}, 3)
    section = report["binary_classification_metrics"]
    assert report["sagelab"]["cross_validation"]["folds"] == len(rows)
    assert section["accuracy"]["value"] == pytest.approx(np.mean(accuracies))
    assert section["auc"]["value"] is None  # one record per fold: no AUC per fold ...
    assert report["sagelab"]["cross_validation"]["out_of_fold_metrics"]["auc"] is not None  # ... but pooled

    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    diabetes = np.column_stack([y, x])[:90]
    s3.put_object(Bucket=bucket, Key="diabetes/train.csv", Body="\n".join(
        ",".join(f"{v:.10g}" for v in row) for row in diabetes).encode())
    kfold = unique("kfold")
    run(sm, evaluator_request(kfold, {"train": f"s3://{bucket}/diabetes/"}, f"s3://{bucket}/cv/{kfold}", {
        "mode": "cross-validation", "algorithm_image": IMAGES["xgboost"], "folds": "3",
        "hyperparameters": json.dumps({"objective": "reg:squarederror", "num_round": "5", "max_depth": "2"})}))
    report = read_report(s3, bucket, f"cv/{kfold}")
    assert report["sagelab"]["cross_validation"]["strategy"] == "KFold"
    rmses = []
    features = diabetes[:, 1:].astype(np.float32)
    for train_index, test_index in KFold(3, shuffle=True, random_state=0).split(features):
        booster = xgb.train({"objective": "reg:squarederror", "max_depth": 2},
                            xgb.DMatrix(features[train_index], label=diabetes[train_index, 0]), num_boost_round=5)
        predicted = booster.predict(xgb.DMatrix(features[test_index]))
        rmses.append(np.sqrt(sk.mean_squared_error(diabetes[test_index, 0], predicted)))
    section = report["regression_metrics"]
    assert section["rmse"]["value"] == pytest.approx(np.mean(rmses), rel=1e-5)
    assert section["rmse"]["standard_deviation"] == pytest.approx(np.std(rmses), rel=1e-4)
    assert s3.get_object(Bucket=bucket, Key=f"cv/{kfold}/predicted_vs_actual.png")["Body"].read().startswith(PNG)


def test_evaluator_settings_are_checked(sm, s3, trained):
    bucket = trained["bucket"]
    name = unique("bad-settings")
    sm.create_processing_job(**evaluator_request(
        name, {"test": f"s3://{bucket}/data/test/"}, f"s3://{bucket}/evaluation/{name}",
        {"problem_type": "Ranking"}))
    deadline = time.monotonic() + 60
    while (desc := sm.describe_processing_job(ProcessingJobName=name))["ProcessingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: Evaluator setting problem_type: expected one of")


@pytest.mark.slow
def test_multiclass_cross_validation(sm, s3, trained):
    from sklearn.datasets import load_iris

    bucket = trained["bucket"]
    x, y = load_iris(return_X_y=True)
    iris = np.column_stack([y, x])
    s3.put_object(Bucket=bucket, Key="iris/train.csv", Body="\n".join(
        ",".join(f"{v:.10g}" for v in row) for row in iris).encode())
    name = unique("iris")
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2}
    run(sm, evaluator_request(name, {"train": f"s3://{bucket}/iris/"}, f"s3://{bucket}/cv/{name}", {
        "mode": "cross-validation", "algorithm_image": IMAGES["xgboost"], "folds": "3",
        "hyperparameters": json.dumps({**params, "num_round": "4"})}))
    report = read_report(s3, bucket, f"cv/{name}")
    section = report["multiclass_classification_metrics"]
    accuracies, log_losses = [], []
    features = iris[:, 1:].astype(np.float32)
    for train_index, test_index in StratifiedKFold(3, shuffle=True, random_state=0).split(features, y):
        booster = xgb.train(params, xgb.DMatrix(features[train_index], label=y[train_index]), num_boost_round=4)
        proba = booster.predict(xgb.DMatrix(features[test_index]))
        accuracies.append(sk.accuracy_score(y[test_index], proba.argmax(axis=1)))
        log_losses.append(sk.log_loss(y[test_index], proba, labels=[0, 1, 2]))
    assert section["accuracy"]["value"] == pytest.approx(np.mean(accuracies))
    assert section["log_loss"]["value"] == pytest.approx(np.mean(log_losses), rel=1e-5)
    assert section["f1_micro"]["value"] == pytest.approx(section["accuracy"]["value"])
    assert set(section["confusion_matrix"]) == {"0", "1", "2"}
    assert s3.get_object(Bucket=bucket, Key=f"cv/{name}/roc.png")["Body"].read().startswith(PNG)
