"""Helpers shared by tests: data sets written SageMaker's way, job requests, raw signed requests."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagelab.demo import LINEAR_LEARNER_IMAGE, XGBOOST_IMAGE, split_dataset, write_csv

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
IMAGES = {"xgboost": XGBOOST_IMAGE, "linear-learner": LINEAR_LEARNER_IMAGE}


def upload_breast_cancer(s3, bucket: str, tmp_path: Path) -> dict[str, np.ndarray]:
    splits = split_dataset()
    for name, rows in splits.items():
        path = tmp_path / f"{name}.csv"
        write_csv(path, rows)
        s3.upload_file(str(path), bucket, f"data/{name}/{name}.csv")
    return splits


def channel(name: str, uri: str, content_type: str | None = "text/csv", data_type: str = "S3Prefix") -> dict:
    ch = {"ChannelName": name,
          "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri}}}
    if content_type:
        ch["ContentType"] = content_type
    return ch


def job_request(name: str, algorithm: str, bucket: str, hyperparameters: dict[str, str], *,
                channels: list[dict] | None = None, max_runtime: int = 600) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGES.get(algorithm, algorithm), "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": channels if channels is not None else [
            channel("train", f"s3://{bucket}/data/train/"), channel("validation", f"s3://{bucket}/data/validation/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }


def wait_job(sm, name: str, timeout: int = 300) -> dict:
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": timeout})
    return sm.describe_training_job(TrainingJobName=name)


def wait_failed(sm, name: str, timeout: int = 300) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_training_job(TrainingJobName=name)
        if desc["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return desc
        time.sleep(0.3)
    raise TimeoutError(name)


def metrics_of(desc: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}


def signed_request(url: str, *, service: str, region: str, access_key: str, secret: str, method: str = "POST",
                   path: str = "/", body: bytes = b"", headers: dict[str, str] | None = None,
                   when: dt.datetime | None = None, payload_hash: str | None = None) -> tuple[int, bytes, dict]:
    """Sign a request the way botocore does, optionally at another time or with a chosen payload hash."""
    when = when or dt.datetime.now(dt.UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    all_headers = {"X-Amz-Date": amz_date, **(headers or {})}
    if payload_hash is not None:
        all_headers["X-Amz-Content-SHA256"] = payload_hash
    request = AWSRequest(method=method, url=url + path, data=body, headers=all_headers)
    request.context["timestamp"] = amz_date
    signer_cls = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_cls(Credentials(access_key, secret), service, region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    scope = f"{access_key}/{amz_date[:8]}/{region}/{service}/aws4_request"
    request.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={scope}, "
                                        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
                                        f"Signature={signature}")
    prepared = urllib.request.Request(url + path, data=body or None, method=method,
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def client_env(server, folder: Path) -> dict[str, str]:
    """A clean environment in which the AWS CLI and the SageMaker SDK reach `server` and nothing else."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(server.client_environment())
    env["AWS_CONFIG_FILE"] = str(folder / "no-aws-config")  # a user's ~/.aws/config must not change the run
    env["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
    return env
