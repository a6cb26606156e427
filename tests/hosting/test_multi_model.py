"""Multi-model endpoints with real boto3: many XGBoost artifacts under one S3 prefix behind one endpoint,
each loaded on its first TargetModel request, kept in an LRU cache, unloaded when the cache is full."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import unique
from xgb_artifact import booster_tar

from sagelab.embedded import ServerProcess
from sagelab.hosting.multi_model import LoadedModel, ModelCache

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/r"
FEATURES = np.random.default_rng(1).normal(size=(60, 3))
ROWS = FEATURES[:4]
BODY = "\n".join(",".join(f"{v:.10g}" for v in row) for row in ROWS)


@pytest.fixture(scope="module")
def mme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # At most two models loaded per instance, so a third request evicts one.
    proc = ServerProcess(tmp_path_factory.mktemp("mme-home"), env={"SAGELAB_MULTI_MODEL_MAX_LOADED": "2"}).start()
    yield proc
    proc.stop()


def artifact(scale: float) -> tuple[bytes, np.ndarray]:
    """A tiny regression booster whose answers differ by `scale`, and its answers for ROWS."""
    import xgboost as xgb

    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 2},
                        xgb.DMatrix(FEATURES, label=scale * FEATURES.sum(axis=1)), 5)
    return booster_tar(booster), booster.predict(xgb.DMatrix(ROWS))


@pytest.fixture(scope="module")
def models(mme_server):
    s3, sm = mme_server.client("s3"), mme_server.client("sagemaker")
    bucket = unique("mme")
    s3.create_bucket(Bucket=bucket)
    expected = {}
    for name, scale in (("model-a.tar.gz", 1.0), ("model-b.tar.gz", -2.0), ("team/model-c.tar.gz", 10.0)):
        data, answers = artifact(scale)
        s3.put_object(Bucket=bucket, Key=f"mme/{name}", Body=data)
        expected[name] = answers
    model = unique("mme-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/mme/"})
    return {"bucket": bucket, "model": model, "expected": expected}


def deploy(sm, model: str) -> str:
    config, endpoint = unique("mme-config"), unique("mme-endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return endpoint


def predict(rt, endpoint: str, target: str) -> np.ndarray:
    response = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=BODY, TargetModel=target)
    assert response["InvokedProductionVariant"] == "AllTraffic"
    return np.array([float(v) for v in response["Body"].read().decode().split()])


def test_each_target_model_answers_with_its_own_artifact(mme_server, models):
    sm, rt = mme_server.client("sagemaker"), mme_server.client("sagemaker-runtime")
    assert sm.describe_model(ModelName=models["model"])["PrimaryContainer"]["Mode"] == "MultiModel"
    endpoint = deploy(sm, models["model"])
    for _ in range(2):  # a load, then a cache hit: the same answers
        for target, expected in models["expected"].items():
            np.testing.assert_allclose(predict(rt, endpoint, target), expected, rtol=1e-5)

    with pytest.raises(rt.exceptions.ValidationError) as missing:
        predict(rt, endpoint, "model-x.tar.gz")
    message = missing.value.response["Error"]["Message"]
    assert "model-x.tar.gz" in message and "mme/model-x.tar.gz" in message
    with pytest.raises(rt.exceptions.ValidationError) as outside:
        predict(rt, endpoint, "../elsewhere/model.tar.gz")
    assert "TargetModel" in outside.value.response["Error"]["Message"]
    with pytest.raises(rt.exceptions.ValidationError) as none:
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=BODY)
    assert "TargetModel is required" in none.value.response["Error"]["Message"]
    # The endpoint still serves after refusing.
    np.testing.assert_allclose(predict(rt, endpoint, "model-a.tar.gz"), models["expected"]["model-a.tar.gz"],
                               rtol=1e-5)
    sm.delete_endpoint(EndpointName=endpoint)


def test_target_model_on_a_single_model_endpoint_is_refused(mme_server, models):
    sm, rt = mme_server.client("sagemaker"), mme_server.client("sagemaker-runtime")
    single = unique("single")
    sm.create_model(ModelName=single, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB, "ModelDataUrl": f"s3://{models['bucket']}/mme/model-a.tar.gz"})
    endpoint = deploy(sm, single)
    with pytest.raises(rt.exceptions.ValidationError) as info:
        predict(rt, endpoint, "model-a.tar.gz")
    assert "not a multi-model endpoint" in info.value.response["Error"]["Message"]
    answer = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=BODY)["Body"].read().split()
    np.testing.assert_allclose([float(v) for v in answer], models["expected"]["model-a.tar.gz"], rtol=1e-5)
    sm.delete_endpoint(EndpointName=endpoint)


def test_multi_model_containers_need_a_prefix(mme_server, models):
    sm = mme_server.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.create_model(ModelName=unique("bad"), ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGB, "Mode": "MultiModel", "ModelDataUrl": f"s3://{models['bucket']}/mme/model-a.tar.gz"})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "PrimaryContainer.ModelDataUrl" in info.value.response["Error"]["Message"]
    with pytest.raises(sm.exceptions.ClientError) as no_bucket:
        sm.create_model(ModelName=unique("bad"), ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGB, "Mode": "MultiModel", "ModelDataUrl": "s3://no-such-bucket-mme/models/"})
    assert "no-such-bucket-mme" in no_bucket.value.response["Error"]["Message"]


@pytest.mark.slow
def test_least_recently_used_models_are_unloaded_and_reload(mme_server, models):
    """With room for two models: a, b, a (hit), c (evicts b), b (evicts a), a (evicts c), a (hit)."""
    sm, rt, cw = (mme_server.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    endpoint = deploy(sm, models["model"])
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    a, b, c = "model-a.tar.gz", "model-b.tar.gz", "team/model-c.tar.gz"
    for target in (a, b, a, c, b, a, a):
        np.testing.assert_allclose(predict(rt, endpoint, target), models["expected"][target], rtol=1e-5)
    requests, hits, evictions = 7, 2, 3
    # With MultiModelConfig ModelCacheSetting Disabled, every request loads its model and unloads it after.
    uncached = unique("mme-uncached")
    sm.create_model(ModelName=uncached, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGB, "Mode": "MultiModel", "ModelDataUrl": f"s3://{models['bucket']}/mme/",
        "MultiModelConfig": {"ModelCacheSetting": "Disabled"}})
    uncached_endpoint = deploy(sm, uncached)
    for _ in range(3):
        np.testing.assert_allclose(predict(rt, uncached_endpoint, a), models["expected"][a], rtol=1e-5)

    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    window = {"Namespace": "AWS/SageMaker", "Dimensions": dims, "StartTime": start - dt.timedelta(minutes=1),
              "EndTime": start + dt.timedelta(minutes=5), "Period": 600}

    def stats(metric: str, of: str = endpoint) -> dict[str, float]:
        where = {**window, "Dimensions": [{"Name": "EndpointName", "Value": of}, dims[1]]}
        points = cw.get_metric_statistics(MetricName=metric, Statistics=["SampleCount", "Sum", "Maximum"],
                                          **where)["Datapoints"]
        return {"SampleCount": sum(p["SampleCount"] for p in points), "Sum": sum(p["Sum"] for p in points),
                "Maximum": max((p["Maximum"] for p in points), default=0.0)}

    deadline = time.monotonic() + 40  # the server writes gathered metrics every 10 s
    while stats("ModelCacheHit")["SampleCount"] < requests or stats("ModelCacheHit", uncached_endpoint)[
            "SampleCount"] < 3:
        assert time.monotonic() < deadline, "the multi-model metrics never arrived"
        time.sleep(1)
    cache_hit = stats("ModelCacheHit")
    assert cache_hit["SampleCount"] == requests and cache_hit["Sum"] == hits
    loaded = stats("LoadedModelCount")
    assert loaded["Maximum"] == 2  # never more than the cap
    for metric in ("ModelLoadingWaitTime", "ModelLoadingTime", "ModelDownloadingTime"):
        assert stats(metric)["SampleCount"] == requests - hits, metric
    assert stats("ModelUnloadingTime")["SampleCount"] == evictions
    [wait] = cw.get_metric_statistics(MetricName="ModelLoadingWaitTime", Statistics=["Average"], **window)["Datapoints"]
    assert wait["Unit"] == "Microseconds" and wait["Average"] > 0
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=dims[:1])["Metrics"]}
    assert {"ModelCacheHit", "LoadedModelCount", "ModelLoadingTime", "ModelUnloadingTime", "Invocations"} <= names
    assert stats("ModelCacheHit", uncached_endpoint)["Sum"] == 0
    assert stats("ModelUnloadingTime", uncached_endpoint)["SampleCount"] == 3
    assert stats("LoadedModelCount", uncached_endpoint)["Maximum"] == 0
    sm.delete_endpoint(EndpointName=endpoint)
    sm.delete_endpoint(EndpointName=uncached_endpoint)


def test_cache_holds_to_its_memory_budget(tmp_path: Path):
    """The cache alone: models of 40 bytes under a 100-byte budget (and a generous count cap)."""
    unloaded: list[str] = []

    def load(target, visit):
        folder = tmp_path / target
        folder.mkdir()
        return LoadedModel(predictor=target, size=40, folder=folder)  # type: ignore[arg-type]

    cache = ModelCache(budget_bytes=100, max_models=10, load=load, unload=lambda m: unloaded.append(m.predictor))
    assert not cache.get("a")[1].hit and not cache.get("b")[1].hit
    assert cache.get("a")[1].hit  # a is now the most recently used
    _, visit = cache.get("c")
    assert not visit.hit and visit.loaded == 2 and unloaded == ["b"] and cache.used_bytes == 80
    assert "a" in cache and "b" not in cache
    # One model bigger than the whole budget is still served, alone.
    cache.budget_bytes = 10
    _, visit = cache.get("d")
    assert visit.loaded == 1 and len(cache) == 1 and unloaded == ["b", "a", "c"]


SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
INFERENCE = b'''import json
import os

import numpy as np


class Weighted:
    def __init__(self, weight):
        self.weight = weight

    def predict(self, rows):
        return np.asarray(rows).sum(axis=1) * self.weight


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weight.json")) as f:
        return Weighted(json.load(f)["weight"])
'''


def script_artifact(weight: float) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("weight.json", f'{{"weight": {weight}}}'.encode()), ("code/inference.py", INFERENCE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.slow
def test_script_mode_artifacts_each_bring_their_own_inference_script(mme_server, models):
    """Framework (script mode) artifacts: each model.tar.gz holds code/inference.py and its own weights."""
    s3, sm, rt = (mme_server.client(s) for s in ("s3", "sagemaker", "sagemaker-runtime"))
    bucket = models["bucket"]
    for name, weight in (("two.tar.gz", 2.0), ("three.tar.gz", 3.0)):
        s3.put_object(Bucket=bucket, Key=f"scripts/{name}", Body=script_artifact(weight))
    model = unique("mme-scripts")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/scripts/",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    endpoint = deploy(sm, model)
    sums = ROWS.sum(axis=1)
    for name, weight in (("two.tar.gz", 2.0), ("three.tar.gz", 3.0), ("two.tar.gz", 2.0)):
        answer = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=BODY,
                                    TargetModel=name)["Body"].read().decode()
        np.testing.assert_allclose([float(v) for v in answer.split()], weight * sums, rtol=1e-5)
    sm.delete_endpoint(EndpointName=endpoint)
