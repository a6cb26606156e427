"""One server for the autoscaling tests, with time scaled down: endpoint metrics and target tracking alarms
per second instead of per minute, alarms evaluated every half second."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from xgb_artifact import booster_tar

from sagelab.embedded import ServerProcess

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="session")
def scaling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("autoscaling-home"),
                         env={"SAGELAB_ALARM_EVALUATION_SECONDS": "0.5",
                              "SAGELAB_ENDPOINT_METRIC_PERIOD_SECONDS": "1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def aas(scaling_server: ServerProcess):
    return scaling_server.client("application-autoscaling")


@pytest.fixture(scope="session")
def model_name(scaling_server: ServerProcess) -> str:
    """A small XGBoost model, the cheapest built-in to serve."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(features, label=features.sum(axis=1)), 2)
    s3, sm = scaling_server.client("s3"), scaling_server.client("sagemaker")
    s3.create_bucket(Bucket="scaling-models")
    s3.put_object(Bucket="scaling-models", Key="model.tar.gz", Body=booster_tar(booster))
    sm.create_model(ModelName="scaling-xgb", PrimaryContainer={
        "Image": XGB, "ModelDataUrl": "s3://scaling-models/model.tar.gz"})
    return "scaling-xgb"


@pytest.fixture(scope="session")
def deploy(scaling_server: ServerProcess, model_name: str):
    """Deploy an endpoint with one variant, `main`, of the XGBoost model; returns its ResourceId."""
    def deploy(name: str, count: int = 1) -> str:
        sm = scaling_server.client("sagemaker")
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "main", "ModelName": model_name, "InitialInstanceCount": count,
             "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
        return f"endpoint/{name}/variant/main"
    return deploy
