"""Endpoints on several servers: one created, updated or deleted through either server is served by both and
outlives the server that created it; the asynchronous requests the dead one had claimed are put back and answered."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from xgb_artifact import create_model, csv_body

from sagelab.embedded import ServerProcess
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore

pytestmark = pytest.mark.slow


def _config(sm, name: str, model: str, variant: str, **extra) -> str:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": variant, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        **extra)
    return name


def _until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except ClientError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _instance_pid(server: ServerProcess, endpoint: str) -> int | None:
    """The process of `server`'s one instance of `endpoint`: a descendant holding the endpoint's log open."""
    import psutil

    logs = str(server.home / "logs" / "Endpoints" / endpoint)
    for child in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(f.path.startswith(logs) for f in child.open_files()):
                return child.pid
    return None


def _requests(url: str) -> list:
    """The queued requests named req-*, read from the shared database."""
    db = Database(url)
    try:
        rows = ResourceStore(db).in_status("async-inference", ("Pending", "InProgress", "Completed", "Failed"))
        return [r for r in rows if r.doc["InferenceId"].startswith("req-")]
    finally:
        db.close()


def _served_variant(rt, endpoint: str) -> str | None:
    return rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_body(2))["InvokedProductionVariant"]


def test_an_endpoint_is_served_by_every_server_and_outlives_its_creator(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"endpoints_{uuid.uuid4().hex[:10]}").replace(
        "postgresql+psycopg://", "postgresql://", 1)
    env = {"SAGELAB_DATABASE_URL": url, "SAGELAB_TAKEOVER_SCAN_SECONDS": "0.3"}
    home = tmp_path / "home"
    creator = ServerProcess(home, env=env).start()
    other = ServerProcess(home, env=env).start()
    try:
        sm_a, s3_a = creator.client("sagemaker"), creator.client("s3")
        rt_a, rt_b, sm_b, s3_b = (creator.client("sagemaker-runtime"), other.client("sagemaker-runtime"),
                                  other.client("sagemaker"), other.client("s3"))
        s3_a.create_bucket(Bucket="shared-endpoints")
        model = create_model(sm_a, s3_a, "shared-endpoints", "m")
        sm_a.create_endpoint(EndpointName="both", EndpointConfigName=_config(sm_a, "first", model, "blue"))
        sm_a.get_waiter("endpoint_in_service").wait(EndpointName="both", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        assert _served_variant(rt_a, "both") == "blue"
        assert _until(lambda: _served_variant(rt_b, "both"), "the other server never served the endpoint") == "blue"

        # An update through the other server: both serve the new configuration once it is InService.
        sm_b.update_endpoint(EndpointName="both", EndpointConfigName=_config(sm_b, "second", model, "green"))
        sm_b.get_waiter("endpoint_in_service").wait(EndpointName="both", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        assert _until(lambda: _served_variant(rt_a, "both") == "green", "the creator kept the old configuration")
        assert _served_variant(rt_b, "both") == "green"

        # An asynchronous endpoint made by the creator. Both servers' instances are frozen, so that each server
        # claims one request and holds it; the creator dies holding its claim, which the survivor puts back.
        s3_a.put_object(Bucket="shared-endpoints", Key="in/0.csv", Body=csv_body(3).encode())
        sm_a.create_endpoint(EndpointName="queued", EndpointConfigName=_config(
            sm_a, "async", model, "main", AsyncInferenceConfig={
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
                "OutputConfig": {"S3OutputPath": "s3://shared-endpoints/out/"}}))
        sm_a.get_waiter("endpoint_in_service").wait(EndpointName="queued", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        # Both serve it once the other takes (and answers) a request of its own.
        warm = _until(lambda: rt_b.invoke_endpoint_async(EndpointName="queued",
                                                         InputLocation="s3://shared-endpoints/in/0.csv"),
                      "the other server never took asynchronous requests")
        _until(lambda: s3_b.head_object(Bucket="shared-endpoints", Key=warm["OutputLocation"].removeprefix(
            "s3://shared-endpoints/")), "the warm-up request was never answered")
        frozen = {server: _until(lambda server=server: _instance_pid(server, "queued"),
                                 "a server never served the asynchronous endpoint") for server in (creator, other)}
        for pid in frozen.values():
            os.kill(pid, signal.SIGSTOP)
        accepted = [rt_a.invoke_endpoint_async(EndpointName="queued", InputLocation="s3://shared-endpoints/in/0.csv",
                                               InferenceId=f"req-{i}") for i in range(4)]
        _until(lambda: sorted(r.status for r in _requests(url)) == ["InProgress", "InProgress", "Pending", "Pending"],
               "the two servers did not each claim a request")
        creator.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen[creator], signal.SIGKILL)
        os.kill(frozen[other], signal.SIGCONT)
        for answer in accepted:
            key = answer["OutputLocation"].removeprefix("s3://shared-endpoints/")
            body = _until(lambda key=key: s3_b.get_object(Bucket="shared-endpoints", Key=key)["Body"].read(),
                          f"{key} was never written")
            assert len(body.decode().split()) == 3
        _until(lambda: all(r.status == "Completed" for r in _requests(url)), "the queue never drained")
        # Claimed once each, except the one the creator held when it died, claimed again by the survivor.
        assert sorted(r.doc["Attempts"] for r in _requests(url)) == [1, 1, 1, 2]
        assert _served_variant(rt_b, "both") == "green"  # the creator's endpoint lives on

        # A delete through the survivor: it stops serving at once.
        sm_b.delete_endpoint(EndpointName="both")
        with pytest.raises(ClientError) as gone:
            _served_variant(rt_b, "both")
        assert gone.value.response["Error"]["Code"] == "ValidationError"
    finally:
        creator.kill()
        other.stop()
