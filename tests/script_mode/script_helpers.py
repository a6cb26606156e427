"""Writing a user's source folder, as a user of the SageMaker SDK has it next to the notebook."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import numpy as np

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"


def write_source(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def sourcedir_tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def iris_csv(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Iris, label first, split 80/20: train.csv and validation.csv."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    cut = int(len(y) * 0.8)
    folder.mkdir(parents=True, exist_ok=True)
    train, validation = folder / "train.csv", folder / "validation.csv"
    np.savetxt(train, np.column_stack([y[:cut], x[:cut]]), delimiter=",", fmt="%.6g")
    np.savetxt(validation, np.column_stack([y[cut:], x[cut:]]), delimiter=",", fmt="%.6g")
    return train, validation


def script_job_request(name: str, bucket: str, source_uri: str, program: str, *, image: str = SKLEARN_IMAGE,
                       hyperparameters: dict[str, str] | None = None, channels: dict[str, str] | None = None,
                       **extra) -> dict:
    """A CreateTrainingJob request shaped as a framework estimator sends it (JSON-encoded hyperparameters)."""
    hps = {"sagemaker_program": f'"{program}"', "sagemaker_submit_directory": f'"{source_uri}"',
           "sagemaker_container_log_level": "20", "sagemaker_region": '"us-east-1"',
           **(hyperparameters or {})}
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hps,
        "InputDataConfig": [{"ChannelName": channel, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for channel, uri in (channels or {}).items()],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        **extra,
    }
    if not request["InputDataConfig"]:
        del request["InputDataConfig"]
    return request


def read_tarball(s3, uri: str) -> dict[str, bytes]:
    bucket, key = uri[5:].split("/", 1)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def deploy(deployable, sm, **kwargs):
    """`deploy(...)` without the SDK's 30-second polling: start it, then wait here with a 1-second delay.
    Returns the predictor and the endpoint's Describe document once it is InService or Failed."""
    import time

    predictor = deployable.deploy(initial_instance_count=1, instance_type="ml.m5.large", wait=False, **kwargs)
    name = kwargs.get("endpoint_name") or predictor.endpoint_name
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        desc = sm.describe_endpoint(EndpointName=name)
        if desc["EndpointStatus"] in ("InService", "Failed"):
            return predictor, desc
        time.sleep(0.5)
    raise TimeoutError(name)
