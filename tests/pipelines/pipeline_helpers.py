"""Pipeline definitions written as the SDK writes them, and waiting on executions."""

from __future__ import annotations

import json
import textwrap
import time

from helpers import ROLE, job_request

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
CODE = "/opt/ml/processing/input/code"
XGB = {"objective": "binary:logistic", "num_round": "5", "max_depth": "2", "eval_metric": "auc"}


def definition(steps: list[dict], parameters: list[dict] | None = None) -> str:
    return json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters or [],
                       "PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"},
                                                    "TrialName": {"Get": "Execution.PipelineExecutionId"}},
                       "Steps": steps})


def training_step(name: str, bucket: str, hyperparameters: dict | None = None, **extra) -> dict:
    request = job_request("unused", "xgboost", bucket, hyperparameters or XGB)
    del request["TrainingJobName"]
    request["OutputDataConfig"]["S3OutputPath"] = f"s3://{bucket}/pipeline-models"
    return {"Name": name, "Type": "Training", "Arguments": request, **extra}


def put_script(s3, bucket: str, name: str, code: str) -> str:
    key = f"code/{name}/{name}.py"
    s3.put_object(Bucket=bucket, Key=key, Body=textwrap.dedent(code).encode())
    return f"s3://{bucket}/{key}"


def processing_step(name: str, script_uri: str, *, inputs=(), outputs=(), arguments=(), **extra) -> dict:
    arguments_ = {
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                             "ContainerEntrypoint": ["python3", f"{CODE}/{script_uri.rsplit('/', 1)[-1]}"]},
        "RoleArn": ROLE,
        "ProcessingInputs": [*inputs, s3_input("code", script_uri, CODE)],
    }
    if arguments:
        arguments_["AppSpecification"]["ContainerArguments"] = list(arguments)
    if outputs:
        arguments_["ProcessingOutputConfig"] = {"Outputs": list(outputs)}
    return {"Name": name, "Type": "Processing", "Arguments": arguments_, **extra}


def s3_input(name: str, uri, local: str) -> dict:
    return {"InputName": name, "AppManaged": False,
            "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"}}


def s3_output(name: str, uri, local: str) -> dict:
    return {"OutputName": name, "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def wait_execution(sm, arn: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if desc["PipelineExecutionStatus"] in ("Succeeded", "Failed", "Stopped"):
            return desc
        time.sleep(0.2)
    raise TimeoutError(arn)


def steps_of(sm, arn: str) -> dict[str, dict]:
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=100)["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in listed}
