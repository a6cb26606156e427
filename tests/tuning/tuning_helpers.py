"""Requests and waits shared by the tuning tests."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from helpers import IMAGES, ROLE, channel

from sagelab.demo import write_csv

TERMINAL = ("Completed", "Failed", "Stopped")


def upload_slow_set(s3, bucket: str, tmp_path: Path) -> None:
    """A generated classification set big enough that a trial takes seconds: early stopping has time to act."""
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=6000, n_features=20, n_informative=8, flip_y=0.05,
                                           random_state=0)
    data = np.column_stack([labels, features])
    for name, rows in {"train": data[:5000], "validation": data[5000:]}.items():
        path = tmp_path / f"slow-{name}.csv"
        write_csv(path, rows)
        s3.upload_file(str(path), bucket, f"slow/{name}/{name}.csv")


def definition(bucket: str, static: dict[str, str], *, data: str = "data", name: str | None = None,
               **extra) -> dict:
    out = {
        "StaticHyperParameters": static,
        "AlgorithmSpecification": {"TrainingImage": IMAGES["xgboost"], "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [channel("train", f"s3://{bucket}/{data}/train/"),
                            channel("validation", f"s3://{bucket}/{data}/validation/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning-output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        **extra,
    }
    if name:
        out["DefinitionName"] = name
    return out


def config(strategy: str, ranges: dict, *, metric: str = "validation:auc", objective: str = "Maximize",
           max_jobs: int | None = None, parallel: int = 2, **extra) -> dict:
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {"Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": objective, "MetricName": metric},
            "ResourceLimits": limits, "ParameterRanges": ranges, **extra}


def wait_tuning(sm, name: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if desc["HyperParameterTuningJobStatus"] in TERMINAL:
            return desc
        time.sleep(0.5)
    raise TimeoutError(f"tuning job {name} did not finish within {timeout} s")


def all_trials(sm, name: str, **params) -> list[dict]:
    summaries, token = [], None
    while True:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=3, **params, **({"NextToken": token} if token else {}))
        summaries += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return summaries


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


def objective_value(summary: dict) -> float:
    return summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
