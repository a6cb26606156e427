"""A server started with SAGELAB_ENGINE=ray runs its training jobs as Ray tasks, end to end through boto3."""

from __future__ import annotations

import psutil
import pytest
from conftest import unique
from helpers import job_request, metrics_of, upload_breast_cancer, wait_job

from sagelab.embedded import ServerProcess

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("sagelab-ray-home"),
                         env={"SAGELAB_ENGINE": "ray", "SAGELAB_MAX_CONCURRENT_JOBS": "2",
                              "RAY_USAGE_STATS_ENABLED": "0"}).start()
    yield proc
    started = psutil.Process(proc.process.pid).children(recursive=True)
    proc.stop(timeout=30)
    _, alive = psutil.wait_procs(started, timeout=10)
    for process in alive:  # a Ray helper the server's shutdown left behind
        process.kill()
    assert not alive, f"the server's Ray processes outlived it: {[p.pid for p in alive]}"


def _ray_processes_of(server: ServerProcess) -> list[psutil.Process]:
    server_process = psutil.Process(server.process.pid)
    return [p for p in server_process.children(recursive=True) if "raylet" in " ".join(p.cmdline())]


@pytest.mark.slow
def test_xgboost_training_job_runs_on_ray(ray_server, tmp_path):
    sm, s3, logs = (ray_server.client(name) for name in ("sagemaker", "s3", "logs"))
    bucket = unique("ray")
    s3.create_bucket(Bucket=bucket)
    upload_breast_cancer(s3, bucket, tmp_path)
    name = unique("xgb-ray")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "20", "max_depth": "3", "eval_metric": "auc"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert metrics_of(desc)["validation:auc"] > 0.9
    assert s3.head_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["ContentLength"] > 0
    assert _ray_processes_of(ray_server), "the job did not run on the server's Ray instance"
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    assert any("validation-auc" in e["message"] for e in events)
