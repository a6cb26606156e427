"""The SageMaker user's path for a built-in algorithm, with real boto3 clients: upload, train, deploy, invoke."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import unique
from helpers import ROLE, channel, job_request, wait_failed, wait_job

REGISTRY = "382416733822.dkr.ecr.us-east-1.amazonaws.com"


def image(repository: str, tag: str = "1") -> str:
    return f"{REGISTRY}/{repository}:{tag}"


def put(s3, bucket: str, key: str, data: bytes | str) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)
    return f"s3://{bucket}/{key}"


def csv_text(x: np.ndarray, y: np.ndarray | None = None) -> str:
    rows = x if y is None else np.column_stack([y, x])
    return "".join(",".join(f"{v:.10g}" for v in row) + "\n" for row in rows)


def train(sm, bucket: str, image_uri: str, hyperparameters: dict[str, str], channels: list[dict], *,
          metric_definitions: list[dict] | None = None, expect: str = "Completed") -> dict:
    name = unique("job")
    request = job_request(name, image_uri, bucket, hyperparameters, channels=channels)
    if metric_definitions:
        request["AlgorithmSpecification"]["MetricDefinitions"] = metric_definitions
    sm.create_training_job(**request)
    desc = wait_job(sm, name) if expect == "Completed" else wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == expect, desc.get("FailureReason")
    return desc


def start(sm, bucket: str, image_uri: str, hyperparameters: dict[str, str], channels: list[dict]) -> str:
    """Create a job without waiting (to run several side by side)."""
    name = unique("job")
    sm.create_training_job(**job_request(name, image_uri, bucket, hyperparameters, channels=channels))
    return name


def metrics(desc: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}


def create_model(sm, image_uri: str, desc: dict) -> str:
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image_uri, "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]})
    return model


def deploy(sm, image_uri: str, desc: dict) -> str:
    model, config, endpoint = create_model(sm, image_uri, desc), unique("config"), unique("endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return endpoint


def transform(sm, model: str, source: str, output: str, *, content_type: str, split: str, accept: str) -> dict:
    """Run a batch transform to its end; returns its description."""
    name = unique("transform")
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, MaxPayloadInMB=1,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                        "ContentType": content_type, "SplitType": split},
        TransformOutput={"S3OutputPath": output, "Accept": accept, "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    return sm.describe_transform_job(TransformJobName=name)


def invoke(rt, endpoint: str, body: bytes | str, content_type: str, accept: str | None = None) -> tuple[bytes, str]:
    kwargs = {"Accept": accept} if accept else {}
    response = rt.invoke_endpoint(EndpointName=endpoint, ContentType=content_type, Body=body, **kwargs)
    return response["Body"].read(), response["ContentType"]


def invoke_json(rt, endpoint: str, body: bytes | str, content_type: str, accept: str = "application/json") -> dict:
    payload, returned = invoke(rt, endpoint, body, content_type, accept)
    assert returned == accept.split(";")[0].strip(), returned
    return json.loads(payload)


def model_error(rt, endpoint: str, body: bytes | str, content_type: str, accept: str | None = None) -> tuple[int, str]:
    """(the container's status, its message) of a request the model refuses (the runtime answers 424)."""
    with pytest.raises(rt.exceptions.ModelError) as info:
        invoke(rt, endpoint, body, content_type, accept)
    response = info.value.response
    return response["OriginalStatusCode"], response["OriginalMessage"]


__all__ = ["channel", "create_model", "csv_text", "deploy", "image", "invoke", "invoke_json", "metrics", "model_error", "put",
           "start", "train", "transform", "wait_failed", "wait_job"]
