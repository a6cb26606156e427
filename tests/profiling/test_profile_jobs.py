"""The profiler and the recipe runner through the real server: the CLI against its S3 API, and as built-in
processing images started with boto3's CreateProcessingJob."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import WaiterError
from conftest import unique
from sklearn import datasets

from sagelab.cli import main

ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer:latest"
RECIPE_IMAGE = "sagelab-recipe:latest"

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
from test_recipe_runs import RECIPE, messy_customers  # noqa: E402


def _wine_csv() -> bytes:
    frame = datasets.load_wine(as_frame=True).frame
    frame.loc[::11, "ash"] = np.nan
    return frame.to_csv(index=False).encode()


def _job(name: str, image: str, inputs: list[dict], output_uri: str, environment: dict[str, str]) -> dict:
    return {
        "ProcessingJobName": name, "RoleArn": ROLE, "Environment": environment,
        "AppSpecification": {"ImageUri": image},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 5}},
        "ProcessingInputs": [{"InputName": n, "S3Input": {"S3Uri": uri, "LocalPath": local,
                                                          "S3DataType": "S3Prefix", "S3InputMode": "File"}}
                             for n, uri, local in inputs],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": output_uri, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def _wait(sm, name: str) -> dict:
    waiter = sm.get_waiter("processing_job_completed_or_stopped")
    waiter.config.delay, waiter.config.max_attempts = 1, 300
    with contextlib.suppress(WaiterError):  # a failed job ends the waiter too; the description says why
        waiter.wait(ProcessingJobName=name)
    return sm.describe_processing_job(ProcessingJobName=name)


def test_cli_profiles_through_the_server_s3_api(server, s3, bucket, tmp_path, capsys):
    s3.put_object(Bucket=bucket, Key="raw/wine/part-0.csv", Body=_wine_csv())
    code = main(["profile", f"s3://{bucket}/raw/wine/", "--target", "target", "--output",
                 f"s3://{bucket}/profiles/wine/", "--endpoint-url", server.url, "--home", str(server.home)])
    assert code == 0, capsys.readouterr().err
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="profiles/wine/")["Contents"]}
    assert keys == {f"profiles/wine/{n}" for n in ("statistics.json", "constraints.json", "report.html")}
    stats = json.loads(s3.get_object(Bucket=bucket, Key="profiles/wine/statistics.json")["Body"].read())
    assert stats["dataset"]["item_count"] == 178
    # A local output folder works the same way.
    assert main(["profile", f"s3://{bucket}/raw/wine/part-0.csv", "--output", str(tmp_path / "local"),
                 "--endpoint-url", server.url, "--home", str(server.home)]) == 0
    assert (tmp_path / "local" / "report.html").stat().st_size > 10_000
    assert main(["profile", f"s3://{bucket}/raw/none/", "--endpoint-url", server.url,
                 "--home", str(server.home)]) == 2
    assert "no objects found" in capsys.readouterr().err


@pytest.mark.slow
def test_model_monitor_analyzer_image_writes_a_baseline(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="baseline/train.csv", Body=_wine_csv())
    name = unique("baseline")
    sm.create_processing_job(**_job(name, ANALYZER, [
        ("baseline_dataset_input", f"s3://{bucket}/baseline/", "/opt/ml/processing/input/baseline_dataset_input")],
        f"s3://{bucket}/monitoring/{name}", {
            "dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
            "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
            "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"}))
    desc = _wait(sm, name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    constraints = json.loads(s3.get_object(Bucket=bucket, Key=f"monitoring/{name}/constraints.json")["Body"].read())
    assert {f["name"] for f in constraints["features"]} >= {"alcohol", "ash", "target"}
    ash = next(f for f in constraints["features"] if f["name"] == "ash")
    assert ash["completeness"] == pytest.approx(1 - 17 / 178)
    head = s3.head_object(Bucket=bucket, Key=f"monitoring/{name}/report.html")
    assert head["ContentLength"] > 10_000


@pytest.mark.slow
def test_recipe_image_and_a_bad_recipe_fails_the_job(sm, s3, bucket):
    frame = messy_customers(150)
    s3.put_object(Bucket=bucket, Key="customers/data.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key="recipes/churn.json", Body=json.dumps(RECIPE).encode())
    name = unique("recipe")
    request = _job(name, RECIPE_IMAGE, [("data", f"s3://{bucket}/customers/", "/opt/ml/processing/input/data"),
                                        ("recipe", f"s3://{bucket}/recipes/churn.json",
                                         "/opt/ml/processing/input/recipe")],
                   f"s3://{bucket}/prepared/{name}", {})
    sm.create_processing_job(**request)
    desc = _wait(sm, name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    body = s3.get_object(Bucket=bucket, Key=f"prepared/{name}/train/train.csv")["Body"].read().decode()
    first = body.splitlines()[0].split(",")
    assert first[0] in ("0.0", "1.0") and len(first) > 10
    transformer = json.loads(s3.get_object(Bucket=bucket, Key=f"prepared/{name}/transformer/transformer.json")
                             ["Body"].read())
    assert transformer["format"] == "sagelab-recipe-transformer"

    bad = unique("recipe-bad")
    request = _job(bad, RECIPE_IMAGE, [("data", f"s3://{bucket}/customers/", "/opt/ml/processing/input/data")],
                   f"s3://{bucket}/prepared/{bad}",
                   {"recipe": json.dumps({"target": "churned", "steps": [{"step": "scale", "columns": ["agee"]}]})})
    request["ProcessingJobName"] = bad
    sm.create_processing_job(**request)
    desc = _wait(sm, bad)
    assert desc["ProcessingJobStatus"] == "Failed"
    assert "step 1 (scale): unknown column 'agee'" in desc["FailureReason"]

