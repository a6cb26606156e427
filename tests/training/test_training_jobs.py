"""Training jobs end to end: a real server, real boto3 clients, real data, real algorithms."""

from __future__ import annotations

import io
import tarfile

import botocore.exceptions
import numpy as np
import pytest
from conftest import unique
from helpers import (
    channel,
    job_request,
    metrics_of,
    upload_breast_cancer,
    wait_failed,
    wait_job,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="module")
def data_bucket(s3, tmp_path_factory):
    name = unique("training")
    s3.create_bucket(Bucket=name)
    splits = upload_breast_cancer(s3, name, tmp_path_factory.mktemp("bc"))
    return name, splits


@pytest.mark.slow
def test_xgboost_trains_to_sklearn_level(sm, s3, data_bucket):
    bucket, splits = data_bucket
    name = unique("xgb")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "60", "max_depth": "3", "eta": "0.2", "eval_metric": "auc"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in desc["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    metrics = metrics_of(desc)
    train, valid = splits["train"], splits["validation"]
    scaler = StandardScaler().fit(train[:, 1:])
    baseline = LogisticRegression(max_iter=2000).fit(scaler.transform(train[:, 1:]), train[:, 0])
    reference_auc = roc_auc_score(valid[:, 0], baseline.predict_proba(scaler.transform(valid[:, 1:]))[:, 1])
    assert metrics["validation:auc"] >= reference_auc - 0.03
    assert "train:auc" in metrics
    artifact = desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    body = s3.get_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert "xgboost-model" in tar.getnames()
    assert desc["BillableTimeInSeconds"] >= 1
    assert desc["TrainingEndTime"] >= desc["TrainingStartTime"]
    assert {"Name": "validation:auc"}.items() <= next(
        m for m in desc["AlgorithmSpecification"]["MetricDefinitions"] if m["Name"] == "validation:auc").items()


@pytest.mark.slow
def test_linear_learner_trains_to_sklearn_level(sm, data_bucket):
    bucket, splits = data_bucket
    name = unique("ll")
    sm.create_training_job(**job_request(name, "linear-learner", bucket, {
        "predictor_type": "binary_classifier", "epochs": "15", "mini_batch_size": "100"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    metrics = metrics_of(desc)
    assert metrics["validation:binary_classification_accuracy"] >= 0.93
    assert "validation:objective_loss" in metrics


def test_waiter_and_list(sm, data_bucket):
    bucket, _ = data_bucket
    names = [unique("listed") for _ in range(3)]
    for name in names:
        sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2"}))
    for name in names:
        assert wait_job(sm, name)["TrainingJobStatus"] == "Completed"
    paginator = sm.get_paginator("list_training_jobs")
    pages = list(paginator.paginate(NameContains="listed-", SortBy="Name", SortOrder="Ascending",
                                    PaginationConfig={"PageSize": 2}))
    listed = [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]]
    assert [n for n in listed if n in names] == sorted(names)
    assert len(pages) >= 2
    completed = sm.list_training_jobs(StatusEquals="Completed", MaxResults=100)["TrainingJobSummaries"]
    assert set(names) <= {s["TrainingJobName"] for s in completed}


def test_describe_missing_job_is_validation_exception(sm):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_waiter_fails_fast_on_missing_job(sm):
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="no-such-job", WaiterConfig={"Delay": 1, "MaxAttempts": 3})


def test_duplicate_name_is_resource_in_use(sm, data_bucket):
    bucket, _ = data_bucket
    name = unique("dup")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2"}))
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2"}))
    wait_job(sm, name)


@pytest.mark.parametrize("hyperparameters, named", [
    ({"num_round": "ten"}, "num_round"),
    ({"num_round": "5", "eta": "2"}, "eta"),
    ({"num_round": "5", "objective": "binary:magic"}, "objective"),
    ({"num_round": "5", "no_such_param": "1"}, "no_such_param"),
    ({"eta": "0.1"}, "num_round"),
])
def test_bad_hyperparameter_is_validation_exception(sm, data_bucket, hyperparameters, named):
    bucket, _ = data_bucket
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_training_job(**job_request(unique("badhp"), "xgboost", bucket, hyperparameters))
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert named in error["Message"]


def test_unknown_image_lists_known_ones(sm, data_bucket):
    bucket, _ = data_bucket
    request = job_request(unique("img"), "xgboost", bucket, {"num_round": "2"})
    request["AlgorithmSpecification"]["TrainingImage"] = "123.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_training_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "sagemaker-xgboost" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("image", [
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
    "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1",
    "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest",
    "sagemaker-xgboost:1.7-1",
])
def test_image_uris_select_xgboost_whatever_the_registry(sm, data_bucket, image):
    bucket, _ = data_bucket
    request = job_request(unique("uri"), "xgboost", bucket, {"num_round": "1"})
    request["AlgorithmSpecification"]["TrainingImage"] = image
    sm.create_training_job(**request)
    assert wait_job(sm, request["TrainingJobName"])["TrainingJobStatus"] == "Completed"


def test_wire_validation_names_the_field(sm, data_bucket):
    bucket, _ = data_bucket
    request = job_request("bad name!", "xgboost", bucket, {"num_round": "2"})
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_training_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "trainingJobName" in info.value.response["Error"]["Message"]


def test_malformed_csv_fails_with_the_line(sm, s3, data_bucket):
    bucket, _ = data_bucket
    prefix = unique("malformed")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train.csv", Body=b"1,2.0,3.0\n0,1.5,abc\n1,2.5,3.5\n")
    name = unique("malformed")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2"},
                                         channels=[channel("train", f"s3://{bucket}/{prefix}/")]))
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["SecondaryStatus"] == "Failed"
    assert "line 2" in desc["FailureReason"] and "abc" in desc["FailureReason"]
    assert desc["FailureReason"].startswith("ClientError")


def test_empty_prefix_fails_naming_it(sm, data_bucket):
    bucket, _ = data_bucket
    name = unique("empty")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2"},
                                         channels=[channel("train", f"s3://{bucket}/nothing-here/")]))
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert f"s3://{bucket}/nothing-here/" in desc["FailureReason"]


def test_label_out_of_range_fails(sm, s3, data_bucket):
    bucket, _ = data_bucket
    prefix = unique("labels")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train.csv", Body=b"0,1.0\n1,2.0\n3,3.0\n")
    name = unique("labels")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "2", "objective": "binary:logistic"},
                                         channels=[channel("train", f"s3://{bucket}/{prefix}/")]))
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "label" in desc["FailureReason"].lower() and "3" in desc["FailureReason"]


def _long_job(sm, s3, bucket: str, name: str, max_runtime: int = 600) -> None:
    prefix = unique("long")
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.integers(0, 2, 5000), rng.normal(size=(5000, 10))])
    buffer = io.BytesIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.5g")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train.csv", Body=buffer.getvalue())
    sm.create_training_job(**job_request(name, "xgboost", bucket, {
        "num_round": "100000", "objective": "binary:logistic", "max_depth": "8"},
        channels=[channel("train", f"s3://{bucket}/{prefix}/")], max_runtime=max_runtime))


def _wait_secondary(sm, name: str, status: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == status:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} never reached {status}")


@pytest.mark.slow
def test_stop_training_job(sm, s3, data_bucket):
    bucket, _ = data_bucket
    name = unique("stop")
    _long_job(sm, s3, bucket, name)
    _wait_secondary(sm, name, "Training")
    sm.stop_training_job(TrainingJobName=name)
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "Stopped"
    with pytest.raises(botocore.exceptions.ClientError):
        sm.stop_training_job(TrainingJobName=name)


def test_stop_missing_job_is_resource_not_found(sm):
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.stop_training_job(TrainingJobName="never-created")


@pytest.mark.slow
def test_max_runtime_exceeded(sm, s3, data_bucket):
    bucket, _ = data_bucket
    name = unique("maxrt")
    _long_job(sm, s3, bucket, name, max_runtime=2)
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_tags(sm, data_bucket):
    bucket, _ = data_bucket
    name = unique("tags")
    request = job_request(name, "xgboost", bucket, {"num_round": "1"})
    request["Tags"] = [{"Key": "team", "Value": "ml"}]
    job_arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert job_arn.startswith("arn:aws:sagemaker:us-east-1:") and job_arn.endswith(f":training-job/{name}")
    sm.add_tags(ResourceArn=job_arn, Tags=[{"Key": "stage", "Value": "dev"}])
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=job_arn)["Tags"]} == {"team": "ml", "stage": "dev"}
    sm.delete_tags(ResourceArn=job_arn, TagKeys=["team"])
    assert sm.list_tags(ResourceArn=job_arn)["Tags"] == [{"Key": "stage", "Value": "dev"}]
    wait_job(sm, name)


def test_arn_carries_the_credential_scope_region(server, data_bucket):
    bucket, _ = data_bucket
    sm_west = server.client("sagemaker", region_name="eu-west-1")
    name = unique("region")
    job_arn = sm_west.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "1"}))["TrainingJobArn"]
    assert job_arn.startswith("arn:aws:sagemaker:eu-west-1:")
    account = job_arn.split(":")[4]
    assert len(account) == 12 and account.isdigit()
    wait_job(sm_west, name)


def test_libsvm_is_the_default_content_type(sm, s3, data_bucket):
    bucket, _ = data_bucket
    prefix = unique("libsvm")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train.libsvm",
                  Body=b"1 0:1.0 1:2.0\n0 0:0.1 1:0.3\n1 0:0.9 1:2.2\n0 0:0.2 1:0.1\n")
    name = unique("libsvm")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "3", "objective": "binary:logistic"},
                                         channels=[channel("train", f"s3://{bucket}/{prefix}/", content_type=None)]))
    assert wait_job(sm, name)["TrainingJobStatus"] == "Completed"


def test_manifest_file_channel(sm, s3, data_bucket):
    import json

    bucket, _ = data_bucket
    manifest = [{"prefix": f"s3://{bucket}/data/"}, "train/train.csv"]
    key = f"{unique('manifest')}/train.manifest"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    name = unique("manifest")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {"num_round": "3", "objective": "binary:logistic"},
                                         channels=[channel("train", f"s3://{bucket}/{key}", data_type="ManifestFile")]))
    assert wait_job(sm, name)["TrainingJobStatus"] == "Completed"
