"""Asynchronous inference with real boto3: InvokeEndpointAsync, results and failures in the lake, a restart."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import botocore.exceptions
import pytest
import sqlalchemy as sa
from conftest import unique
from xgb_artifact import create_model, csv_body

from sagelab.embedded import ServerProcess
from sagelab.storage import tables
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.fixture(scope="module")
def lake(s3):
    bucket = unique("async")
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="module")
def model(sm, s3, lake):
    return create_model(sm, s3, lake, unique("model"))


def async_config(bucket: str, per_instance: int = 2) -> dict:
    return {"OutputConfig": {"S3OutputPath": f"s3://{bucket}/out", "S3FailurePath": f"s3://{bucket}/fail",
                             "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:ok"}},
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": per_instance}}


def deploy(sm, model: str, config: dict | None) -> str:
    name = unique("ep")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        **({"AsyncInferenceConfig": config} if config else {}))
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    return name


def wait_object(s3, uri: str, timeout: float = 60) -> bytes:
    bucket, _, key = uri[5:].partition("/")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, f"{uri} was never written"
            time.sleep(0.1)


def exists(s3, uri: str) -> bool:
    bucket, _, key = uri[5:].partition("/")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except botocore.exceptions.ClientError:
        return False


@pytest.fixture(scope="module")
def endpoint(sm, model, lake):
    return deploy(sm, model, async_config(lake))


def test_config_is_validated_stored_and_described(sm, model, lake, endpoint):
    described = sm.describe_endpoint_config(EndpointConfigName=endpoint)["AsyncInferenceConfig"]
    assert described == async_config(lake)
    assert sm.describe_endpoint(EndpointName=endpoint)["AsyncInferenceConfig"] == async_config(lake)

    def refused(config: dict) -> str:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            sm.create_endpoint_config(EndpointConfigName=unique("c"), AsyncInferenceConfig=config,
                                      ProductionVariants=[{"VariantName": "v", "ModelName": model,
                                                           "InitialInstanceCount": 1}])
        assert info.value.response["Error"]["Code"] == "ValidationException"
        return info.value.response["Error"]["Message"]

    assert "S3OutputPath" in refused({"OutputConfig": {"S3FailurePath": f"s3://{lake}/fail"}})
    assert "s3outputpath" in refused({"OutputConfig": {"S3OutputPath": "/not/s3"}}).lower()


@pytest.mark.slow
def test_good_and_failing_inputs(s3, rt, lake, endpoint):
    s3.put_object(Bucket=lake, Key="in/good.csv", Body=csv_body(3).encode())
    s3.put_object(Bucket=lake, Key="in/bad.csv", Body=b"1,2,3,4,5,6,7")
    good = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{lake}/in/good.csv",
                                    ContentType="text/csv")
    assert good["ResponseMetadata"]["HTTPStatusCode"] == 202
    inference_id = good["InferenceId"]
    assert good["OutputLocation"] == f"s3://{lake}/out/{inference_id}.out"
    assert good["FailureLocation"] == f"s3://{lake}/fail/{inference_id}-error.out"
    scores = [float(v) for v in wait_object(s3, good["OutputLocation"]).decode().split()]
    assert len(scores) == 3 and all(0 <= p <= 1 for p in scores)

    named = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{lake}/in/good.csv",
                                     ContentType="text/csv", Accept="application/json", InferenceId="my-id-1")
    assert named["InferenceId"] == "my-id-1" and named["OutputLocation"] == f"s3://{lake}/out/my-id-1.out"
    assert len(json.loads(wait_object(s3, named["OutputLocation"]))["predictions"]) == 3
    placed = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{lake}/in/good.csv",
                                      ContentType="text/csv", S3OutputPathExtension="daily/run-1",
                                      Filename="scores.csv")
    assert placed["OutputLocation"] == f"s3://{lake}/out/daily/run-1/scores.csv"
    assert placed["FailureLocation"] == f"s3://{lake}/fail/{placed['InferenceId']}-error.out"
    assert len(wait_object(s3, placed["OutputLocation"]).decode().split()) == 3

    bad = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{lake}/in/bad.csv",
                                   ContentType="text/csv")
    message = wait_object(s3, bad["FailureLocation"]).decode()
    assert "(400)" in message, message
    missing = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{lake}/in/none.csv",
                                       ContentType="text/csv")
    message = wait_object(s3, missing["FailureLocation"]).decode()
    assert "InputLocation" in message and "NoSuchKey" in message, message
    assert not exists(s3, bad["OutputLocation"]) and not exists(s3, missing["OutputLocation"])


def test_wrong_invocation_kind_is_refused_like_aws(sm, rt, model, lake, endpoint):
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_body(1))
    assert "InvokeEndpointAsync" in info.value.response["Error"]["Message"]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.invoke_endpoint_async(EndpointName=endpoint, ContentType="text/csv")
    assert "InputLocation" in info.value.response["Error"]["Message"]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation="s3://")
    assert "InputLocation" in info.value.response["Error"]["Message"]
    with pytest.raises(rt.exceptions.ValidationError):
        rt.invoke_endpoint_async(EndpointName="no-such-endpoint", InputLocation=f"s3://{lake}/in/good.csv")
    realtime = deploy(sm, model, None)
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.invoke_endpoint_async(EndpointName=realtime, InputLocation=f"s3://{lake}/in/good.csv")
    assert "InvokeEndpoint" in info.value.response["Error"]["Message"]
    sm.delete_endpoint(EndpointName=realtime)


def _instance_pid(home: Path, endpoint: str) -> int:
    logs_dir = str(home / "logs" / "Endpoints" / endpoint)
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd).startswith(logs_dir) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    raise AssertionError("no serving instance found")


def _queue(home: Path) -> list:
    db = Database(f"sqlite:///{home / 'sagelab.db'}")
    try:
        return ResourceStore(db).in_status("async-inference", ("Pending", "InProgress", "Completed", "Failed"))
    finally:
        db.close()


@pytest.mark.slow
def test_pending_requests_survive_a_crash_and_complete_exactly_once(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    instance = None
    try:
        s3, sm, rt = first.client("s3"), first.client("sagemaker"), first.client("sagemaker-runtime")
        s3.create_bucket(Bucket="queue")
        model = create_model(sm, s3, "queue", "m")
        endpoint = deploy(sm, model, async_config("queue", per_instance=1))
        for i in range(5):
            s3.put_object(Bucket="queue", Key=f"in/{i}.csv", Body=csv_body(2, seed=i).encode())
        warm = rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation="s3://queue/in/0.csv")
        wait_object(s3, warm["OutputLocation"])
        # A frozen instance holds the one request it is given; every other one stays queued.
        instance = _instance_pid(home, endpoint)
        os.kill(instance, signal.SIGSTOP)
        accepted = [rt.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://queue/in/{i}.csv",
                                             ContentType="text/csv", InferenceId=f"req-{i}") for i in range(5)]
    finally:
        first.kill()
        if instance is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance, signal.SIGKILL)
    before = {r.doc["InferenceId"]: r.status for r in _queue(home)}
    assert sorted(s for i, s in before.items() if i.startswith("req-")) == ["InProgress"] + ["Pending"] * 4

    with ServerProcess(home) as second:
        s3 = second.client("s3")
        for i, answer in enumerate(accepted):
            assert answer["OutputLocation"] == f"s3://queue/out/req-{i}.out"
            assert len(wait_object(s3, answer["OutputLocation"]).decode().split()) == 2
        deadline = time.monotonic() + 30
        while any(r.status != "Completed" for r in _queue(home)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        outputs = [o["Key"] for o in s3.list_objects_v2(Bucket="queue", Prefix="out/")["Contents"]]
        assert sorted(outputs) == sorted([f"out/req-{i}.out" for i in range(5)] + [f"out/{warm['InferenceId']}.out"])
        assert "Contents" not in s3.list_objects_v2(Bucket="queue", Prefix="fail/")
        # The backlog is sampled each second and written every 10 s (and at shutdown): wait for its points.
        db = Database(f"sqlite:///{home / 'sagelab.db'}")
        t = tables.metric_points
        deadline = time.monotonic() + 60
        while True:
            with db.read() as conn:
                backlog = conn.execute(sa.select(t.c.maximum, t.c.dimensions).where(
                    t.c.metric_name == "ApproximateBacklogSize")).all()
                per_instance = conn.execute(sa.select(t.c.maximum).where(
                    t.c.metric_name == "ApproximateBacklogSizePerInstance")).all()
            if backlog and per_instance:
                break
            assert time.monotonic() < deadline, "no ApproximateBacklogSize points were written"
            time.sleep(0.5)
        db.close()
    rows = [r for r in _queue(home) if r.doc["InferenceId"].startswith("req-")]
    # Claimed once each, except the one the crash interrupted, which was claimed again after the restart.
    assert sorted(r.doc["Attempts"] for r in rows) == [1, 1, 1, 1, 2]

    assert {json.loads(d)["EndpointName"] for _, d in backlog} == {endpoint}
    assert max(m for m, _ in backlog) >= 1
