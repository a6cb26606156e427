"""Batch transform end to end: a real server, real boto3 clients, a model trained by a real training job."""

from __future__ import annotations

import gzip
import io
import json
import time

import botocore.exceptions
import numpy as np
import pytest
from conftest import unique
from helpers import IMAGES, job_request, upload_breast_cancer, wait_job

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


def csv_bytes(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.10g")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def world(sm, s3, tmp_path_factory):
    """A bucket with breast-cancer data, XGBoost and Linear Learner models trained on it, two input objects."""
    bucket = unique("transform")
    s3.create_bucket(Bucket=bucket)
    splits = upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("data"))
    xgb_job, ll_job = unique("xgb"), unique("ll")
    sm.create_training_job(**job_request(xgb_job, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "30", "max_depth": "3"}))
    sm.create_training_job(**job_request(ll_job, "linear-learner", bucket, {"predictor_type": "binary_classifier"}))
    models, artifacts = {}, {}
    for job, algorithm in ((xgb_job, "xgboost"), (ll_job, "linear-learner")):
        desc = wait_job(sm, job)
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        artifacts[algorithm] = desc["ModelArtifacts"]["S3ModelArtifacts"]
        models[algorithm] = unique("model")
        sm.create_model(ModelName=models[algorithm], ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": IMAGES[algorithm], "ModelDataUrl": artifacts[algorithm]})
    inputs = {"validation": splits["validation"], "test": splits["test"]}
    for name, rows in inputs.items():
        s3.put_object(Bucket=bucket, Key=f"batch/in/{name}.csv", Body=csv_bytes(rows[:, 1:]))
        s3.put_object(Bucket=bucket, Key=f"batch/labelled/{name}.csv", Body=csv_bytes(rows))
    return {"bucket": bucket, "model": models["xgboost"], "linear_model": models["linear-learner"],
            "inputs": inputs, "artifact": artifacts["xgboost"]}


def transform_request(name: str, model: str, source: str, output: str, **overrides) -> dict:
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": output, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def wait_transform(sm, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_transform_job(TransformJobName=name)
        if desc["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return desc
        time.sleep(0.1)
    raise TimeoutError(name)


def run_job(sm, world, *, source: str | None = None, **overrides) -> tuple[dict, str]:
    name = unique("tf")
    bucket = world["bucket"]
    output = f"s3://{bucket}/batch/out/{name}"
    sm.create_transform_job(**transform_request(name, world["model"], source or f"s3://{bucket}/batch/in/",
                                                output, **overrides))
    desc = wait_transform(sm, name)
    return desc, f"batch/out/{name}"


def read_text(s3, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def outputs(s3, bucket: str, prefix: str) -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    return {item["Key"][len(prefix) + 1:]: read_text(s3, bucket, item["Key"]) for item in listed}


def scores(text: str) -> np.ndarray:
    return np.array([float(line) for line in text.splitlines()])


def test_multi_record_transforms_every_object(sm, s3, world):
    desc, prefix = run_job(sm, world, BatchStrategy="MultiRecord")
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    written = outputs(s3, world["bucket"], prefix)
    assert sorted(written) == ["test.csv.out", "validation.csv.out"]
    for name, rows in world["inputs"].items():
        predicted = scores(written[f"{name}.csv.out"])
        assert len(predicted) == len(rows)
        assert ((predicted > 0.5) == (rows[:, 0] == 1)).mean() >= 0.9
    assert desc["TransformEndTime"] >= desc["TransformStartTime"] >= desc["CreationTime"]
    assert desc["BatchStrategy"] == "MultiRecord" and desc["MaxPayloadInMB"] == 6
    assert desc["TransformInput"]["CompressionType"] == "None"
    assert desc["DataProcessing"] == {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
    assert desc["TransformJobArn"].endswith(f":transform-job/{desc['TransformJobName']}")
    assert desc["ModelName"] == world["model"]


def test_single_record_and_split_none_give_the_same_output(sm, s3, world):
    multi, multi_prefix = run_job(sm, world, BatchStrategy="MultiRecord", MaxConcurrentTransforms=1)
    single, single_prefix = run_job(sm, world, BatchStrategy="SingleRecord", MaxConcurrentTransforms=2)
    whole, whole_prefix = run_job(sm, world, TransformInput={"SplitType": "None"})
    for desc in (multi, single, whole):
        assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    expected = outputs(s3, world["bucket"], multi_prefix)
    assert outputs(s3, world["bucket"], single_prefix) == expected
    assert outputs(s3, world["bucket"], whole_prefix) == expected


def test_filters_and_join_keep_the_label_next_to_the_score(sm, s3, world):
    bucket = world["bucket"]
    desc, prefix = run_job(sm, world, source=f"s3://{bucket}/batch/labelled/test.csv",
                           DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    lines = outputs(s3, bucket, prefix)["test.csv.out"].splitlines()
    rows = world["inputs"]["test"]
    assert len(lines) == len(rows)
    pairs = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert pairs.shape == (len(rows), 2)
    assert np.array_equal(pairs[:, 0], rows[:, 0])
    assert ((pairs[:, 1] > 0.5) == (pairs[:, 0] == 1)).mean() >= 0.9


def test_json_lines_output(sm, s3, world):
    desc, prefix = run_job(sm, world, TransformOutput={"Accept": "application/jsonlines"})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    lines = outputs(s3, world["bucket"], prefix)["test.csv.out"].splitlines()
    assert len(lines) == len(world["inputs"]["test"])
    assert all(set(json.loads(line)) == {"score"} for line in lines)


def test_json_records_joined_with_their_output(sm, s3, world):
    bucket = world["bucket"]
    rows = world["inputs"]["test"]
    body = "".join(json.dumps({"id": f"r{i}", "data": {"features": {"values": list(map(float, row[1:]))}},
                               "label": float(row[0])}) + "\n" for i, row in enumerate(rows))
    s3.put_object(Bucket=bucket, Key="batch/json/records.jsonl", Body=body.encode())
    desc, prefix = run_job(sm, {**world, "model": world["linear_model"]}, source=f"s3://{bucket}/batch/json/",
                           TransformInput={"ContentType": "application/jsonlines"},
                           TransformOutput={"Accept": "application/jsonlines"},
                           DataProcessing={"InputFilter": "$.data", "JoinSource": "Input",
                                           "OutputFilter": "$['id','SageMakerOutput']"})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    records = [json.loads(line) for line in outputs(s3, bucket, prefix)["records.jsonl.out"].splitlines()]
    assert [r["id"] for r in records] == [f"r{i}" for i in range(len(rows))]
    assert all(set(r) == {"id", "SageMakerOutput"} for r in records)
    labels = np.array([r["SageMakerOutput"]["predicted_label"] for r in records])
    assert (labels == rows[:, 0]).mean() >= 0.9


def test_records_the_model_cannot_read_fail_with_its_reason(sm, s3, world):
    bucket = world["bucket"]
    s3.put_object(Bucket=bucket, Key="batch/jsonx/records.jsonl", Body=b'{"features": [1, 2]}\n' * 5)
    desc, _ = run_job(sm, world, source=f"s3://{bucket}/batch/jsonx/",
                      TransformInput={"ContentType": "application/jsonlines"},
                      DataProcessing={"InputFilter": "$.features"})
    assert desc["TransformJobStatus"] == "Failed"
    reason = desc["FailureReason"]
    assert reason.startswith("ClientError:") and "records.jsonl, line 1" in reason and "415" in reason


def test_gzip_input(sm, s3, world):
    bucket = world["bucket"]
    rows = world["inputs"]["test"][:, 1:]
    s3.put_object(Bucket=bucket, Key="batch/gz/test.csv.gz", Body=gzip.compress(csv_bytes(rows)))
    desc, prefix = run_job(sm, world, source=f"s3://{bucket}/batch/gz/", TransformInput={"CompressionType": "Gzip"})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert len(scores(outputs(s3, bucket, prefix)["test.csv.gz.out"])) == len(rows)


def test_manifest_input(sm, s3, world):
    bucket = world["bucket"]
    manifest = [{"prefix": f"s3://{bucket}/batch/in/"}, "test.csv"]
    s3.put_object(Bucket=bucket, Key="batch/manifest.json", Body=json.dumps(manifest).encode())
    desc, prefix = run_job(sm, world, source=f"s3://{bucket}/batch/manifest.json", TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/batch/manifest.json"}}})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert list(outputs(s3, bucket, prefix)) == ["test.csv.out"]


def test_waiter_completes(sm, world):
    name = unique("waited")
    bucket = world["bucket"]
    sm.create_transform_job(**transform_request(name, world["model"], f"s3://{bucket}/batch/in/",
                                                f"s3://{bucket}/batch/out/{name}"))
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "Completed"


def test_missing_model_is_validation_exception(sm, world):
    bucket = world["bucket"]
    request = transform_request(unique("nomodel"), "no-such-model", f"s3://{bucket}/batch/in/", f"s3://{bucket}/o")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_transform_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-model" in info.value.response["Error"]["Message"]


def test_duplicate_name_is_resource_in_use(sm, world):
    bucket = world["bucket"]
    name = unique("dup")
    request = transform_request(name, world["model"], f"s3://{bucket}/batch/in/", f"s3://{bucket}/batch/out/{name}")
    sm.create_transform_job(**request)
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_transform_job(**request)
    wait_transform(sm, name)


def test_describe_missing_job_is_validation_exception(sm):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.describe_transform_job(TransformJobName="no-such-transform")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="no-such-transform", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.stop_transform_job(TransformJobName="no-such-transform")


@pytest.mark.parametrize("overrides, named", [
    ({"TransformInput": {"SplitType": "TFRecord"}}, "not supported yet"),
    ({"DataProcessing": {"InputFilter": "$..features"}}, "InputFilter"),
    ({"DataProcessing": {"OutputFilter": "$[?(@.score > 0.5)]"}}, "OutputFilter"),
    ({"MaxPayloadInMB": 101}, "MaxPayloadInMB"),
    ({"MaxPayloadInMB": 50, "MaxConcurrentTransforms": 3}, "MaxConcurrentTransforms"),
])
def test_invalid_requests_are_validation_exceptions(sm, world, overrides, named):
    bucket = world["bucket"]
    request = transform_request(unique("bad"), world["model"], f"s3://{bucket}/batch/in/", f"s3://{bucket}/o",
                                **overrides)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_transform_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert named in info.value.response["Error"]["Message"]


def test_wrong_column_count_fails_naming_object_and_line(sm, s3, world):
    bucket = world["bucket"]
    rows = csv_bytes(world["inputs"]["test"][:, 1:]).splitlines(keepends=True)
    rows[6] = b"1.0,2.0,3.0\n"
    s3.put_object(Bucket=bucket, Key="batch/broken/part.csv", Body=b"".join(rows))
    desc, prefix = run_job(sm, world, source=f"s3://{bucket}/batch/broken/")
    assert desc["TransformJobStatus"] == "Failed"
    reason = desc["FailureReason"]
    assert reason.startswith("ClientError:")
    assert f"s3://{bucket}/batch/broken/part.csv" in reason and "line 7" in reason
    assert "3 column(s)" in reason


def test_missing_model_artifact_fails(sm, s3, world):
    bucket = world["bucket"]
    key = "batch/models/copy.tar.gz"
    source = world["artifact"].removeprefix(f"s3://{bucket}/")
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source})
    model = unique("gone")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGES["xgboost"], "ModelDataUrl": f"s3://{bucket}/{key}"})
    s3.delete_object(Bucket=bucket, Key=key)
    desc, _ = run_job(sm, {**world, "model": model})
    assert desc["TransformJobStatus"] == "Failed"
    assert key in desc["FailureReason"]


def test_stop_a_long_job(sm, s3, world):
    bucket = world["bucket"]
    # 300,000 one-feature LibSVM records sent one by one: far longer than the test waits.
    s3.put_object(Bucket=bucket, Key="batch/long/records.libsvm", Body=b"0:1.5\n" * 300_000)
    name = unique("long")
    sm.create_transform_job(**transform_request(
        name, world["model"], f"s3://{bucket}/batch/long/", f"s3://{bucket}/batch/out/{name}",
        TransformInput={"ContentType": "text/libsvm"}, BatchStrategy="SingleRecord", MaxConcurrentTransforms=1))
    time.sleep(1.0)
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "InProgress"
    sm.stop_transform_job(TransformJobName=name)
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] in ("Stopping", "Stopped")
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    desc = sm.describe_transform_job(TransformJobName=name)
    assert desc["TransformJobStatus"] == "Stopped"
    assert "TransformEndTime" in desc
    with pytest.raises(botocore.exceptions.ClientError):
        sm.stop_transform_job(TransformJobName=name)


def test_list_transform_jobs_paginates_and_filters(sm, world):
    bucket = world["bucket"]
    tag = unique("listed")
    names = [f"{tag}-{i}" for i in range(3)]
    for name in names:
        sm.create_transform_job(**transform_request(name, world["model"], f"s3://{bucket}/batch/in/",
                                                    f"s3://{bucket}/batch/out/{name}"))
    for name in names:
        assert wait_transform(sm, name)["TransformJobStatus"] == "Completed"
    pages = list(sm.get_paginator("list_transform_jobs").paginate(
        NameContains=tag, SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2
    listed = [s for p in pages for s in p["TransformJobSummaries"]]
    assert [s["TransformJobName"] for s in listed] == names
    assert all(s["TransformJobStatus"] == "Completed" and "TransformEndTime" in s for s in listed)
    completed = sm.list_transform_jobs(NameContains=tag, StatusEquals="Completed")["TransformJobSummaries"]
    assert len(completed) == 3
    assert sm.list_transform_jobs(NameContains=tag, StatusEquals="Failed")["TransformJobSummaries"] == []
    newest = sm.list_transform_jobs(NameContains=tag, MaxResults=1)["TransformJobSummaries"]
    assert newest[0]["TransformJobName"] == names[-1]
