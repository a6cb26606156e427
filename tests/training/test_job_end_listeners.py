"""Whoever waits for jobs (a tuning job's driver) hears of each job's end as soon as it is settled."""

from __future__ import annotations

import time

from sagelab.platform import Platform
from sagelab.settings import load_settings


def _job(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::000000000000:role/test",
        "HyperParameters": {"objective": "binary:logistic", "num_round": "2"},
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://listen/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://listen/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_listeners_hear_each_settled_job_end(tmp_path):
    platform = Platform(load_settings({"home": str(tmp_path)}, environ={})).open()
    try:
        platform.blobs.create_bucket("listen")
        rows = "\n".join(f"{i % 2},{i},{(i * 7) % 5}" for i in range(40)).encode()
        platform.blobs.put("listen", "train/data.csv", [rows])
        heard: list[tuple[str, str]] = []
        platform.training.on_job_ended(
            lambda name: heard.append((name, platform.training.describe(name)["TrainingJobStatus"])))
        platform.training.create(_job("listened"), region="us-east-1")
        platform.training.create(_job("stopped"), region="us-east-1")
        platform.training.stop("stopped")
        deadline = time.monotonic() + 120
        while len(heard) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(heard) == [("listened", "Completed"), ("stopped", "Stopped")]
    finally:
        platform.close()
