"""recordIO-protobuf end to end on a real server with real boto3 clients, the way the SageMaker SDK works:
`record_set` shards + a ManifestFile channel without a ContentType, a Linear Learner job, an endpoint invoked
with protobuf (the result read from `label["score"]`), a batch transform with SplitType RecordIO, an
AugmentedManifestFile channel, and malformed protobuf failing the job with the record named."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import unique
from helpers import IMAGES, ROLE, job_request, wait_failed, wait_job
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from sagelab.algorithms.first_party.recordio import (
    iter_records,
    read_records,
    record_message_class,
    write_matrix,
)

PROTOBUF = "application/x-recordio-protobuf"


def record_set(s3, bucket: str, prefix: str, x: np.ndarray, y: np.ndarray, shards: int = 2) -> str:
    """What the SDK's `record_set` uploads: Float32 shards `<prefix>/matrix_<i>.pbr` and the manifest
    `<prefix>/.amazon.manifest` listing them relative to `s3://bucket/<prefix>/`."""
    names = []
    for i, rows in enumerate(np.array_split(np.arange(len(x)), shards)):
        names.append(f"matrix_{i}.pbr")
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{names[-1]}", Body=write_matrix(x[rows], y[rows]))
    manifest = f"{prefix}/.amazon.manifest"
    s3.put_object(Bucket=bucket, Key=manifest, Body=json.dumps([{"prefix": f"s3://{bucket}/{prefix}/"}, *names]))
    return f"s3://{bucket}/{manifest}"


def manifest_channel(name: str, uri: str) -> dict:
    # As RecordSet.records_s3_input() builds it: no ContentType (1P algorithms default to recordIO-protobuf).
    return {"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "ManifestFile", "S3Uri": uri, "S3DataDistributionType": "ShardedByS3Key"}}}


@pytest.fixture(scope="module")
def world(sm, s3):
    bucket = unique("recordio")
    s3.create_bucket(Bucket=bucket)
    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x.astype(np.float32), y.astype(np.float32), test_size=0.25,
                                          random_state=0, stratify=y)
    train = record_set(s3, bucket, "sdk/train", xtr, ytr)
    test = record_set(s3, bucket, "sdk/test", xte, yte, shards=1)
    job = unique("ll-pb")
    sm.create_training_job(**job_request(job, "linear-learner", bucket, {
        "predictor_type": "binary_classifier", "feature_dim": "30", "mini_batch_size": "100"},
        channels=[manifest_channel("train", train), manifest_channel("test", test)]))
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGES["linear-learner"], "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]})
    s3.put_object(Bucket=bucket, Key="batch/in/test.pbr", Body=write_matrix(xte))
    return {"bucket": bucket, "desc": desc, "model": model, "x_test": xte, "y_test": yte, "train": train}


@pytest.mark.slow
def test_trained_from_an_sdk_record_set(world):
    metrics = {m["MetricName"]: m["Value"] for m in world["desc"]["FinalMetricDataList"]}
    assert metrics["test:binary_classification_accuracy"] >= 0.93


@pytest.mark.slow
def test_endpoint_answers_protobuf_like_the_sdk_predictor_reads_it(sm, server, world):
    rt = server.client("sagemaker-runtime")
    config, endpoint = unique("config"), unique("endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": world["model"], "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    try:
        x, y = world["x_test"], world["y_test"]
        response = rt.invoke_endpoint(EndpointName=endpoint, ContentType=PROTOBUF, Accept=PROTOBUF,
                                      Body=write_matrix(x))
        assert response["ContentType"] == PROTOBUF
        payloads = list(iter_records(response["Body"].read()))
        assert len(payloads) == len(x)
        labels, scores = [], []
        for payload in payloads:  # what RecordDeserializer hands to user code
            record = record_message_class()()
            record.ParseFromString(payload)
            scores.append(record.label["score"].float32_tensor.values[0])
            labels.append(record.label["predicted_label"].float32_tensor.values[0])
        assert np.mean(np.array(labels) == y) >= 0.93
        assert all(0.0 <= s <= 1.0 for s in scores)
        as_json = json.loads(rt.invoke_endpoint(EndpointName=endpoint, ContentType=PROTOBUF,
                                                Accept="application/json", Body=write_matrix(x[:3]))["Body"].read())
        assert [p["predicted_label"] for p in as_json["predictions"]] == [int(v) for v in labels[:3]]
        bad = rt.exceptions.ModelError
        with pytest.raises(bad) as info:
            rt.invoke_endpoint(EndpointName=endpoint, ContentType=PROTOBUF, Body=write_matrix(x[:2])[:-9])
        assert "record 2: truncated" in info.value.response["Error"]["Message"]
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def _transform(sm, world, **overrides) -> tuple[dict, str]:
    name = unique("tf-pb")
    bucket = world["bucket"]
    request = {
        "TransformJobName": name, "ModelName": world["model"],
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{bucket}/batch/in/"}},
                           "ContentType": PROTOBUF, "SplitType": "RecordIO"},
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/batch/out/{name}", "Accept": "application/jsonlines",
                            "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "MaxPayloadInMB": 1, **overrides}
    sm.create_transform_job(**request)
    deadline = time.monotonic() + 120
    while sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "InProgress":
        assert time.monotonic() < deadline, f"transform job {name} is still running"
        time.sleep(0.2)
    return sm.describe_transform_job(TransformJobName=name), f"batch/out/{name}/test.pbr.out"


@pytest.mark.slow
def test_batch_transform_splits_recordio(sm, s3, world):
    desc, key = _transform(sm, world)
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    lines = s3.get_object(Bucket=world["bucket"], Key=key)["Body"].read().decode().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert len(predictions) == len(world["y_test"])
    assert np.mean(np.array([p["predicted_label"] for p in predictions]) == world["y_test"]) >= 0.93

    desc, key = _transform(sm, world, BatchStrategy="SingleRecord", TransformOutput={
        "S3OutputPath": f"s3://{world['bucket']}/batch/out/{unique('pb')}", "Accept": PROTOBUF,
        "AssembleWith": "None"})
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    out = desc["TransformOutput"]["S3OutputPath"].split("/", 3)[3] + "/test.pbr.out"
    records = read_records(s3.get_object(Bucket=world["bucket"], Key=out)["Body"].read())
    assert [r.label["predicted_label"].values[0] for r in records] == [p["predicted_label"] for p in predictions]


@pytest.mark.slow
def test_batch_transform_names_a_truncated_record(sm, s3, world):
    bucket = world["bucket"]
    s3.put_object(Bucket=bucket, Key="batch/bad/test.pbr", Body=write_matrix(world["x_test"][:5])[:-9])
    desc, _ = _transform(sm, world, TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/bad/"}},
        "ContentType": PROTOBUF, "SplitType": "RecordIO"})
    assert desc["TransformJobStatus"] == "Failed"
    assert "record 5" in desc["FailureReason"] and "truncated" in desc["FailureReason"]


@pytest.mark.slow
def test_augmented_manifest_channel(sm, s3, world):
    bucket = world["bucket"]
    lines = [json.dumps({"source-ref": f"s3://{bucket}/sdk/train/matrix_{i}.pbr", "shard": i}) for i in range(2)]
    s3.put_object(Bucket=bucket, Key="augmented/train.manifest", Body="\n".join(lines) + "\n")
    job = unique("ll-aug")
    sm.create_training_job(**job_request(job, "linear-learner", bucket, {
        "predictor_type": "binary_classifier", "epochs": "3"}, channels=[{
            "ChannelName": "train", "ContentType": PROTOBUF, "RecordWrapperType": "None", "InputMode": "Pipe",
            "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "AttributeNames": ["source-ref"],
                                            "S3Uri": f"s3://{bucket}/augmented/train.manifest"}}}]))
    desc = wait_job(sm, job)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")

    job = unique("ll-aug-missing")
    sm.create_training_job(**job_request(job, "linear-learner", bucket, {"predictor_type": "binary_classifier"},
                                         channels=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                                             "S3DataType": "AugmentedManifestFile",
                                             "AttributeNames": ["source-ref", "label"],
                                             "S3Uri": f"s3://{bucket}/augmented/train.manifest"}}}]))
    desc = wait_failed(sm, job)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "line 1 has no attribute 'label'" in desc["FailureReason"]


@pytest.mark.slow
def test_malformed_protobuf_fails_the_job_naming_the_record(sm, s3, world):
    bucket = world["bucket"]
    good = write_matrix(world["x_test"][:4], world["y_test"][:4])
    s3.put_object(Bucket=bucket, Key="broken/part-0.pbr", Body=good[:-10])
    job = unique("ll-broken")
    sm.create_training_job(**job_request(job, "linear-learner", bucket, {"predictor_type": "binary_classifier"},
                                         channels=[{"ChannelName": "train", "ContentType": PROTOBUF,
                                                    "DataSource": {"S3DataSource": {
                                                        "S3DataType": "S3Prefix",
                                                        "S3Uri": f"s3://{bucket}/broken/"}}}]))
    desc = wait_failed(sm, job)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "Channel 'train', file part-0.pbr: record 4: truncated" in desc["FailureReason"]


def test_augmented_manifest_needs_attribute_names(sm, world):
    bucket = world["bucket"]
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.create_training_job(**job_request(unique("ll-noattr"), "linear-learner", bucket,
                                             {"predictor_type": "binary_classifier"}, channels=[{
                                                 "ChannelName": "train", "DataSource": {"S3DataSource": {
                                                     "S3DataType": "AugmentedManifestFile",
                                                     "S3Uri": f"s3://{bucket}/augmented/train.manifest"}}}]))
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "AttributeNames is required" in info.value.response["Error"]["Message"]
