"""One server for the data capture and Model Monitor tests: captured invocations are written every 0.3 s,
and a monitoring schedule's hour lasts 4 s. One small XGBoost model serves every endpoint."""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterator

import numpy as np
import pytest
import xgboost as xgb
from conftest import unique

from sagelab.embedded import ServerProcess

HOUR_SECONDS = 4
XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
FEATURES = ("a", "b", "c")


def feature_rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    """a ~ N(shift, 1), b ~ N(5, 2), c in 0..3: the baseline's distribution, `a` moved by `shift`."""
    return np.column_stack([rng.normal(shift, 1, n), rng.normal(5, 2, n), rng.integers(0, 4, n)])


def model_tarball(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def csv_text(rows: np.ndarray) -> str:
    return "".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in rows)


@pytest.fixture(scope="session")
def monitor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("monitor-home"), env={
        "SAGELAB_CAPTURE_FLUSH_SECONDS": "0.3", "SAGELAB_MONITORING_HOUR_SECONDS": str(HOUR_SECONDS)}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def msm(monitor_server):
    return monitor_server.client("sagemaker")


@pytest.fixture(scope="session")
def ms3(monitor_server):
    return monitor_server.client("s3")


@pytest.fixture(scope="session")
def mrt(monitor_server):
    return monitor_server.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def lab(msm, ms3):
    """A bucket, the baseline data set (CSV with a header) and an XGBoost model ready to deploy."""
    bucket = unique("monitor")
    ms3.create_bucket(Bucket=bucket)
    rng = np.random.default_rng(7)
    rows = feature_rows(rng, 300)
    labels = (rows[:, 0] + rows[:, 1] > 5).astype(int)
    ms3.put_object(Bucket=bucket, Key="baseline/data.csv", Body=(",".join(FEATURES) + "\n" + csv_text(rows)).encode())
    # The model is trained here rather than by a training job: what is tested is what happens around it.
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(rows, label=labels),
                        num_boost_round=5)
    ms3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=model_tarball(bytes(booster.save_raw("json"))))
    model = unique("model")
    msm.create_model(ModelName=model, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
        "Image": XGB, "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz"})
    return {"bucket": bucket, "model": model, "baseline_rows": rows}


def deploy_capturing(msm, lab, *, sampling: int = 100, prefix: str | None = None) -> tuple[str, str]:
    """An endpoint capturing input and output; returns (endpoint name, capture destination)."""
    destination = f"s3://{lab['bucket']}/{prefix or unique('capture')}"
    config, endpoint = unique("config"), unique("endpoint")
    msm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": lab["model"], "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}], DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": sampling, "DestinationS3Uri": destination,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}})
    msm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    msm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return endpoint, destination


@pytest.fixture(scope="session")
def drifted_deployment(msm, lab):
    """(endpoint, capture destination) of one endpoint the drift tests share."""
    endpoint, destination = deploy_capturing(msm, lab)
    yield endpoint, destination
    msm.delete_endpoint(EndpointName=endpoint)


@pytest.fixture
def drifted_endpoint(drifted_deployment, mrt, ms3):
    """The shared endpoint, with requests whose feature a moved by 4 standard deviations captured just now:
    an analysis window is a few 4 s schedule hours, which earlier tests on a busy machine outlast."""
    endpoint, destination = drifted_deployment
    before = captured_records(ms3, destination)
    rng = np.random.default_rng(3)
    for _ in range(10):
        mrt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_text(feature_rows(rng, 10, 4.0)))
    deadline = time.monotonic() + 30
    while captured_records(ms3, destination) < before + 10:  # the capture flush: the window must see them
        assert time.monotonic() < deadline, "the endpoint's captures were never written"
        time.sleep(0.2)
    return endpoint


def captured_records(ms3, destination: str) -> int:
    bucket = destination[5:].partition("/")[0]
    return sum(read_object(ms3, bucket, key).count(b"\n") for key in captured_keys(ms3, destination))


def captured_keys(ms3, destination: str) -> list[str]:
    bucket, _, prefix = destination[5:].partition("/")
    pages = ms3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def read_object(ms3, bucket: str, key: str) -> bytes:
    out = io.BytesIO()
    ms3.download_fileobj(bucket, key, out)
    return out.getvalue()


@pytest.fixture
def monitor_sdk_env(monitor_server, monkeypatch, tmp_path):
    from helpers import client_env

    for name in [n for n in os.environ if n.startswith(("AWS_", "SAGEMAKER_"))]:
        monkeypatch.delenv(name)
    for name, value in client_env(monitor_server, tmp_path).items():
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.setenv(name, value)
    # boto3's default session keeps the credentials it first resolved: an earlier test's server's key.
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return monitor_server
