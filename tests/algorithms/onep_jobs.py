"""Helpers for the first-party algorithm tests that drive a real server: data in S3 the way the SageMaker SDK
writes it, training jobs by image URI, endpoints, and invocations in each content type."""

from __future__ import annotations

import io
import json

import numpy as np
from conftest import unique
from helpers import channel, job_request, wait_job

from sagelab.algorithms.first_party import recordio

REGISTRY = "382416733822.dkr.ecr.us-east-1.amazonaws.com"
PROTOBUF = "application/x-recordio-protobuf"


def image(repository: str) -> str:
    return f"{REGISTRY}/{repository}:1"


def put(s3, bucket: str, key: str, body: bytes) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"


def put_protobuf(s3, bucket: str, prefix: str, x: np.ndarray, y: np.ndarray | None = None) -> str:
    return put(s3, bucket, f"{prefix}/part-0.pbr", recordio.write_matrix(np.asarray(x, dtype=np.float32), y))


def put_csv(s3, bucket: str, prefix: str, x: np.ndarray, y: np.ndarray | None = None) -> str:
    rows = x if y is None else np.column_stack([y, x])
    out = io.StringIO()
    np.savetxt(out, rows, delimiter=",", fmt="%.9g")
    return put(s3, bucket, f"{prefix}/part-0.csv", out.getvalue().encode())


def start_job(sm, bucket: str, repository: str, hyperparameters: dict[str, str], channels: list[dict]) -> str:
    name = unique(repository)
    sm.create_training_job(**job_request(name, image(repository), bucket, hyperparameters, channels=channels))
    return name


def train(sm, bucket: str, repository: str, hyperparameters: dict[str, str], channels: list[dict]) -> dict:
    desc = wait_job(sm, start_job(sm, bucket, repository, hyperparameters, channels))
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    return desc


def create_model(sm, repository: str, desc: dict) -> str:
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
        "Image": image(repository), "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]})
    return model


def deploy(sm, model: str) -> str:
    config, endpoint = unique("config"), unique("endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return endpoint


def batch_transform(sm, s3, bucket: str, model: str, x: np.ndarray) -> list[dict]:
    """A batch transform of `x` as one recordIO-protobuf object, split into records (SplitType RecordIO) and
    answered as JSON Lines; the output's objects, in order."""
    name = unique("transform")
    s3.put_object(Bucket=bucket, Key=f"{name}/in/data.pbr", Body=recordio.write_matrix(np.asarray(x, np.float32)))
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, BatchStrategy="MultiRecord", MaxPayloadInMB=1,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{name}/in/"}},
                        "ContentType": PROTOBUF, "SplitType": "RecordIO"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/{name}/out", "Accept": "application/jsonlines",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    desc = sm.describe_transform_job(TransformJobName=name)
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    body = s3.get_object(Bucket=bucket, Key=f"{name}/out/data.pbr.out")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def invoke(rt, endpoint: str, body: bytes | str, content_type: str, accept: str | None = None) -> tuple[bytes, str]:
    extra = {"Accept": accept} if accept else {}
    response = rt.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=body, **extra)
    return response["Body"].read(), response["ContentType"]


def csv_body(x: np.ndarray) -> str:
    return "\n".join(",".join(f"{v:.9g}" for v in row) for row in x)


def json_body(x: np.ndarray) -> str:
    return json.dumps({"instances": [{"features": [float(v) for v in row]} for row in x]})


def protobuf_labels(payload: bytes) -> list[dict[str, list[float]]]:
    """Each response record's label map, as the SDK's RecordDeserializer exposes it."""
    return [{key: tensor.values.tolist() for key, tensor in record.label.items()}
            for record in recordio.read_records(payload)]


def model_error(rt, endpoint: str, body: bytes | str, content_type: str, accept: str | None = None) -> dict:
    """The error of an invocation the model refuses (SageMaker answers 424 with the model's own status)."""
    try:
        invoke(rt, endpoint, body, content_type, accept)
    except rt.exceptions.ModelError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 424
        return error.response
    raise AssertionError(f"{content_type} body was accepted")


def csv_channel(name: str, uri: str, label_size: int | None = None) -> dict:
    return channel(name, uri, "text/csv" if label_size is None else f"text/csv;label_size={label_size}")


def protobuf_channel(name: str, uri: str) -> dict:
    return channel(name, uri, PROTOBUF)


def metrics_of(desc: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}
