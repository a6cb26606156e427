"""Serverless endpoints with real boto3: zero instances, a cold start, warm reuse, scale to zero, throttling."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.config import Config
from conftest import unique
from xgb_artifact import create_model, csv_body

from sagelab.embedded import ServerProcess

IDLE_SECONDS = 2.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("serverless-home"),
                         env={"SAGELAB_SERVERLESS_IDLE_SECONDS": str(IDLE_SECONDS)}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def sm(srv):
    return srv.client("sagemaker")


@pytest.fixture(scope="module")
def rt(srv):
    # No retries: a ThrottlingException must reach the test, not be retried away by botocore.
    return srv.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                                         read_timeout=120))


@pytest.fixture(scope="module")
def model(srv, sm):
    s3 = srv.client("s3")
    bucket = unique("serverless")
    s3.create_bucket(Bucket=bucket)
    return create_model(sm, s3, bucket, unique("model"))


def serverless_endpoint(sm, model: str, **config) -> str:
    name = unique("ep")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model,
         "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2, **config}}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
    return name


def instance_logs(srv: ServerProcess, endpoint: str) -> list[Path]:
    """One log file per instance ever started for the endpoint: the number of cold starts."""
    return sorted((srv.home / "logs" / "Endpoints" / endpoint).glob("*.log"))


def live_instances(srv: ServerProcess, endpoint: str) -> list[int]:
    """Serving-instance processes of the endpoint, found by the log files they hold open."""
    logs_dir = str(srv.home / "logs" / "Endpoints" / endpoint)
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd).startswith(logs_dir) for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return pids


def invoke(rt, endpoint: str, rows: int = 2) -> list[float]:
    out = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_body(rows))
    assert out["InvokedProductionVariant"] == "AllTraffic"
    return [float(v) for v in out["Body"].read().decode().split()]


def test_config_validation_names_the_field(sm, model):
    def refused(variant: dict) -> str:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            sm.create_endpoint_config(EndpointConfigName=unique("c"), ProductionVariants=[
                {"VariantName": "v", "ModelName": model, **variant}])
        assert info.value.response["Error"]["Code"] == "ValidationException"
        return info.value.response["Error"]["Message"]

    good = {"MemorySizeInMB": 1024, "MaxConcurrency": 5}
    both = refused({"ServerlessConfig": good, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    assert "ServerlessConfig" in both and "InstanceType" in both and "InitialInstanceCount" in both
    neither = refused({})
    assert "ServerlessConfig" in neither and "InitialInstanceCount" in neither
    assert "MemorySizeInMB" in refused({"ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 5}})
    assert "1500" in refused({"ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 5}})
    # Out of the model's range: refused at the boundary, in AWS's own words.
    assert "serverlessConfig.maxConcurrency" in refused({"ServerlessConfig": {"MemorySizeInMB": 1024,
                                                                              "MaxConcurrency": 201}})
    assert "ProvisionedConcurrency" in refused({"ServerlessConfig": {**good, "ProvisionedConcurrency": 6}})
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName=unique("c"), ProductionVariants=[
            {"VariantName": "v", "ModelName": model, "ServerlessConfig": good}], AsyncInferenceConfig={
            "OutputConfig": {"S3OutputPath": "s3://b/out"}})
    assert "AsyncInferenceConfig" in info.value.response["Error"]["Message"]

    name = unique("c")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v", "ModelName": model, "ServerlessConfig": good}])
    variant = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == good and "InitialInstanceCount" not in variant


@pytest.mark.slow
def test_cold_start_then_warm_reuse_then_scale_to_zero(srv, sm, rt, model):
    endpoint = serverless_endpoint(sm, model)
    variant = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    expected = {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert variant["CurrentServerlessConfig"] == variant["DesiredServerlessConfig"] == expected
    assert "CurrentInstanceCount" not in variant
    assert instance_logs(srv, endpoint) == [] and live_instances(srv, endpoint) == []  # InService with none

    first = invoke(rt, endpoint)  # the cold start
    assert len(first) == 2 and all(0 <= p <= 1 for p in first)
    assert len(instance_logs(srv, endpoint)) == 1 and len(live_instances(srv, endpoint)) == 1
    for _ in range(5):
        assert invoke(rt, endpoint) == first  # warm: the same instance answers
    assert len(instance_logs(srv, endpoint)) == 1

    deadline = time.monotonic() + 30
    while live_instances(srv, endpoint):  # idle for IDLE_SECONDS: scaled to zero
        assert time.monotonic() < deadline, "the idle serverless instance was not stopped"
        time.sleep(0.2)
    assert invoke(rt, endpoint) == first  # a second cold start
    assert len(instance_logs(srv, endpoint)) == 2 and len(live_instances(srv, endpoint)) == 1
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_provisioned_concurrency_keeps_one_instance_warm(srv, sm, rt, model):
    endpoint = serverless_endpoint(sm, model, ProvisionedConcurrency=1)
    assert len(live_instances(srv, endpoint)) == 1  # started with the endpoint
    invoke(rt, endpoint)
    time.sleep(IDLE_SECONDS * 2)
    assert len(live_instances(srv, endpoint)) == 1 and len(instance_logs(srv, endpoint)) == 1
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_more_than_max_concurrency_is_throttled(srv, sm, rt, model):
    endpoint = serverless_endpoint(sm, model, MaxConcurrency=1, MemorySizeInMB=1024)
    invoke(rt, endpoint)  # warm: the model fits the smallest memory size
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert "DesiredInstanceCount" in info.value.response["Error"]["Message"]
    big = csv_body(60_000, seed=1)
    outcomes: list[str] = []

    def hammer() -> None:
        for _ in range(6):
            try:
                rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=big)["Body"].read()
                outcomes.append("ok")
            except botocore.exceptions.ClientError as exc:
                error = exc.response["Error"]
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
                assert "MaxConcurrency" in error["Message"]
                outcomes.append(error["Code"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == 24 and set(outcomes) == {"ok", "ThrottlingException"}, outcomes
    assert invoke(rt, endpoint)  # nothing in flight: admitted again
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_model_setup_time_is_published_for_cold_starts(srv, sm, rt, model):
    endpoint = serverless_endpoint(sm, model)
    invoke(rt, endpoint)
    cloudwatch = srv.client("cloudwatch")
    deadline = time.monotonic() + 30
    query = {"Namespace": "AWS/SageMaker", "StartTime": time.time() - 600, "EndTime": time.time() + 600,
             "Period": 60, "Statistics": ["SampleCount", "Maximum"],
             "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]}
    def published(name):
        return cloudwatch.get_metric_statistics(MetricName=name, **query)["Datapoints"]

    # ModelSetupTime is written when the instance is ready; utilization on the invocation metrics' flush.
    while not (published("ModelSetupTime") and published("ServerlessConcurrentExecutionsUtilization")):
        assert time.monotonic() < deadline, "ModelSetupTime or the utilization was not published"
        time.sleep(0.5)
    setup = published("ModelSetupTime")
    assert sum(p["SampleCount"] for p in setup) == 1 and setup[0]["Maximum"] > 0
    assert setup[0]["Unit"] == "Microseconds"
    utilization = published("ServerlessConcurrentExecutionsUtilization")
    assert 0 < utilization[0]["Maximum"] <= 1
    sm.delete_endpoint(EndpointName=endpoint)
