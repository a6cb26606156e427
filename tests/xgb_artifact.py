"""A small XGBoost model written as SageMaker's `model.tar.gz` (XGBoost JSON), without a training job."""

from __future__ import annotations

import io
import tarfile

import numpy as np

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
FEATURES = 3


def model_tar() -> bytes:
    import xgboost

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, FEATURES))
    y = (x[:, 0] > 0).astype(float)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2}, xgboost.DMatrix(x, label=y), 5)
    return booster_tar(booster)


def booster_tar(booster) -> bytes:
    """A trained xgboost.Booster as the model.tar.gz SageMaker's XGBoost container loads."""
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def create_model(sm, s3, bucket: str, name: str) -> str:
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=model_tar())
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
        "Image": XGB_IMAGE, "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz"})
    return name


def csv_body(rows: int, seed: int = 0) -> str:
    x = np.random.default_rng(seed).normal(size=(rows, FEATURES))
    return "\n".join(",".join(f"{v:.6f}" for v in row) for row in x)
