"""Hosting end to end: train -> model -> endpoint config -> endpoint -> invoke -> delete, with real boto3."""

from __future__ import annotations

import collections
import io
import json
import os
import signal
import tarfile
import threading
import time
from pathlib import Path

import botocore.exceptions
import numpy as np
import pytest
from conftest import unique
from helpers import job_request, upload_breast_cancer, wait_job

from sagelab.embedded import ServerProcess
from sagelab.hosting.invocation_metrics import InvocationMetrics
from sagelab.storage.db import Database

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LL = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.fixture(scope="module")
def trained(sm, s3, tmp_path_factory):
    bucket = unique("hosting")
    s3.create_bucket(Bucket=bucket)
    splits = upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("data"))
    xgb_job, ll_job = unique("xgb"), unique("ll")
    sm.create_training_job(**job_request(xgb_job, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "30", "max_depth": "3"}))
    sm.create_training_job(**job_request(ll_job, "linear-learner", bucket, {"predictor_type": "binary_classifier"}))
    models = {}
    for job, image in ((xgb_job, XGB), (ll_job, LL)):
        desc = wait_job(sm, job)
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        name = unique("model")
        sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
            "Image": image, "ModelDataUrl": desc["ModelArtifacts"]["S3ModelArtifacts"]})
        models[image] = name
    return {"bucket": bucket, "splits": splits, "xgb": models[XGB], "ll": models[LL]}


def deploy(sm, variants: list[tuple[str, str, float, int]]) -> str:
    config, endpoint = unique("config"), unique("endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InitialVariantWeight": w, "InitialInstanceCount": n,
         "InstanceType": "ml.m5.large"} for v, m, w, n in variants])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return endpoint


def csv_rows(rows: np.ndarray) -> str:
    return "\n".join(",".join(f"{v:.10g}" for v in row) for row in rows)


@pytest.mark.slow
def test_xgboost_endpoint_full_cycle(sm, rt, trained):
    endpoint = deploy(sm, [("AllTraffic", trained["xgb"], 1.0, 1)])
    desc = sm.describe_endpoint(EndpointName=endpoint)
    assert desc["EndpointStatus"] == "InService"
    variant = desc["ProductionVariants"][0]
    assert variant["CurrentWeight"] == 1.0 and variant["CurrentInstanceCount"] == 1
    test = trained["splits"]["test"]
    response = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_rows(test[:, 1:]))
    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    scores = [float(line) for line in response["Body"].read().decode().splitlines()]
    assert len(scores) == len(test)
    assert np.mean((np.array(scores) > 0.5) == test[:, 0]) >= 0.9

    one = csv_rows(test[:1, 1:])
    as_json = json.loads(rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
                                            Body=one)["Body"].read())
    assert set(as_json) == {"predictions"} and set(as_json["predictions"][0]) == {"score"}
    lines = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/jsonlines",
                               Body=csv_rows(test[:2, 1:]))["Body"].read().decode().splitlines()
    assert len(lines) == 2 and "score" in json.loads(lines[0])
    libsvm = " ".join(f"{i}:{v:.10g}" for i, v in enumerate(test[0, 1:]))
    from_libsvm = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/libsvm", Body=libsvm)["Body"].read()
    assert abs(float(from_libsvm) - scores[0]) < 1e-5
    echoed = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=one, CustomAttributes="trace=7",
                                InferenceId="abc-1")
    assert echoed["CustomAttributes"] == "trace=7"

    sm.delete_endpoint(EndpointName=endpoint)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    with pytest.raises(rt.exceptions.ValidationError):
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=one)


@pytest.mark.slow
def test_linear_learner_endpoint_formats(sm, rt, trained):
    endpoint = deploy(sm, [("AllTraffic", trained["ll"], 1.0, 1)])
    test = trained["splits"]["test"]
    body = json.dumps({"instances": [{"features": list(map(float, row))} for row in test[:5, 1:]]})
    out = json.loads(rt.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=body)["Body"].read())
    assert len(out["predictions"]) == 5
    assert set(out["predictions"][0]) == {"score", "predicted_label"}
    from_csv = json.loads(rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                             Accept="application/json", Body=csv_rows(test[:5, 1:]))["Body"].read())
    assert [p["predicted_label"] for p in from_csv["predictions"]] == [p["predicted_label"] for p in out["predictions"]]
    lines = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/jsonlines",
                               Body=csv_rows(test[:3, 1:]))["Body"].read().decode().splitlines()
    assert len(lines) == 3 and set(json.loads(lines[0])) == {"score", "predicted_label"}
    labels = [p["predicted_label"] for p in json.loads(rt.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
        Body=csv_rows(test[:, 1:]))["Body"].read())["predictions"]]
    assert np.mean(np.array(labels) == test[:, 0]) >= 0.9
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_bad_payloads_get_4xx_and_the_endpoint_keeps_serving(sm, rt, trained):
    endpoint = deploy(sm, [("AllTraffic", trained["xgb"], 1.0, 1)])
    good = csv_rows(trained["splits"]["test"][:1, 1:])

    def model_error(**kwargs) -> dict:
        with pytest.raises(rt.exceptions.ModelError) as info:
            rt.invoke_endpoint(EndpointName=endpoint, **kwargs)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
        return info.value.response

    wrong_columns = model_error(ContentType="text/csv", Body="1,2,3")
    assert wrong_columns["OriginalStatusCode"] == 400 and "30" in wrong_columns["OriginalMessage"]
    text = model_error(ContentType="text/csv", Body=good.replace(good.split(",")[0], "abc", 1))
    assert text["OriginalStatusCode"] == 400
    assert model_error(ContentType="image/png", Body=good)["OriginalStatusCode"] == 415
    assert model_error(ContentType="text/csv", Accept="image/png", Body=good)["OriginalStatusCode"] == 406
    for body in (b"", b"1," * (7 * 1024 * 1024 // 2)):
        with pytest.raises(rt.exceptions.ValidationError):
            rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    assert rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=good)["Body"].read()
    sm.delete_endpoint(EndpointName=endpoint)


def test_invalid_configurations(sm, trained):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName=unique("c"), ProductionVariants=[
            {"VariantName": "a", "ModelName": "no-such-model", "InitialInstanceCount": 1}])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-model" in info.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_model(ModelName=trained["xgb"], PrimaryContainer={"Image": XGB, "ModelDataUrl": "s3://x/y"})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.describe_endpoint(EndpointName="never-made")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_endpoint(EndpointName=unique("e"), EndpointConfigName="no-such-config")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert trained["xgb"] in {m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]}


@pytest.mark.slow
def test_unloadable_artifact_fails_the_endpoint(sm, s3, trained):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"this is not a model"
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=trained["bucket"], Key="broken/model.tar.gz", Body=buffer.getvalue())
    model = unique("broken")
    sm.create_model(ModelName=model, PrimaryContainer={
        "Image": XGB, "ModelDataUrl": f"s3://{trained['bucket']}/broken/model.tar.gz"})
    config, endpoint = unique("config"), unique("endpoint")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "a", "ModelName": model, "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    desc = sm.describe_endpoint(EndpointName=endpoint)
    assert desc["EndpointStatus"] == "Failed"
    assert "model" in desc["FailureReason"].lower()
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_weighted_variants_and_target_variant(sm, rt, trained):
    endpoint = deploy(sm, [("A", trained["xgb"], 1.0, 1), ("B", trained["xgb"], 3.0, 1)])
    body = csv_rows(trained["splits"]["test"][:1, 1:])
    counts = collections.Counter(
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["InvokedProductionVariant"]
        for _ in range(400))
    # Binomial(400, 0.25): mean 100, sd ~8.7; 5 sd either way.
    assert 56 <= counts["A"] <= 144 and counts["A"] + counts["B"] == 400
    targeted = {rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body,
                                   TargetVariant="A")["InvokedProductionVariant"] for _ in range(20)}
    assert targeted == {"A"}
    sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0.0}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    after = {rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["InvokedProductionVariant"]
             for _ in range(30)}
    assert after == {"B"}
    variants = {v["VariantName"]: v for v in sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]}
    assert variants["A"]["CurrentWeight"] == 0.0
    sm.delete_endpoint(EndpointName=endpoint)


class Stream:
    """Invokes an endpoint continuously on a thread, counting answers by variant and failures."""

    def __init__(self, rt, endpoint: str, body: str):
        self.rt, self.endpoint, self.body = rt, endpoint, body
        self.variants: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.rt.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body=self.body)
                self.variants[r["InvokedProductionVariant"]] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
                self.failures.append(repr(exc))

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.slow
def test_update_endpoint_under_load_refuses_nothing(sm, rt, trained):
    endpoint = deploy(sm, [("old", trained["xgb"], 1.0, 1)])
    new_config = unique("config")
    sm.create_endpoint_config(EndpointConfigName=new_config, ProductionVariants=[
        {"VariantName": "new", "ModelName": trained["xgb"], "InitialInstanceCount": 1}])
    with Stream(rt, endpoint, csv_rows(trained["splits"]["test"][:1, 1:])) as stream:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        time.sleep(0.5)
    assert stream.failures == []
    assert stream.variants["old"] > 0 and stream.variants["new"] > 0
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == new_config
    sm.delete_endpoint(EndpointName=endpoint)


def _instance_pids(logs_dir: Path) -> list[int]:
    """Serving-instance processes, found by the log files they hold open."""
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd).startswith(str(logs_dir)) for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_killed_instance_is_replaced_without_failed_requests(server, sm, rt, trained):
    endpoint = deploy(sm, [("AllTraffic", trained["xgb"], 1.0, 2)])
    logs_dir = server.home / "logs" / "Endpoints" / endpoint
    before = _instance_pids(logs_dir)
    assert len(before) == 2
    with Stream(rt, endpoint, csv_rows(trained["splits"]["test"][:1, 1:])) as stream:
        time.sleep(0.5)
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _instance_pids(logs_dir)
            if len(now) == 2 and before[0] not in now:
                break
            time.sleep(0.2)
        time.sleep(0.5)
    assert len(stream.failures) <= 2, stream.failures
    assert sum(stream.variants.values()) > 20
    assert len(list(logs_dir.glob("*.log"))) == 3
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.slow
def test_metrics_and_restart(tmp_path):
    home = tmp_path / "home"
    with ServerProcess(home) as first:
        s3, sm, rt = first.client("s3"), first.client("sagemaker"), first.client("sagemaker-runtime")
        s3.create_bucket(Bucket="metrics")
        splits = upload_breast_cancer(s3, "metrics", tmp_path)
        sm.create_training_job(**job_request("m-job", "xgboost", "metrics", {"num_round": "5"}))
        artifact = wait_job(sm, "m-job")["ModelArtifacts"]["S3ModelArtifacts"]
        sm.create_model(ModelName="m", PrimaryContainer={"Image": XGB, "ModelDataUrl": artifact})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="e", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        body = csv_rows(splits["test"][:1, 1:])
        for _ in range(25):
            rt.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body=body)
        for _ in range(3):
            with pytest.raises(rt.exceptions.ModelError):
                rt.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body="1,2")
    metrics = InvocationMetrics(Database(f"sqlite:///{home / 'sagelab.db'}"))
    assert sum(r["sum"] for r in metrics.query("e", "Invocations", "v")) == 28
    assert sum(r["sum"] for r in metrics.query("e", "Invocation4XXErrors", "v")) == 3
    overhead = metrics.query("e", "OverheadLatency", "v")
    model = metrics.query("e", "ModelLatency", "v")
    assert overhead and model and all(r["p50"] > 0 for r in overhead + model)

    with ServerProcess(home) as second:
        sm, rt = second.client("sagemaker"), second.client("sagemaker-runtime")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="e", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        deadline = time.monotonic() + 60
        while True:
            try:
                rt.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body=body)
                break
            except botocore.exceptions.ClientError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
