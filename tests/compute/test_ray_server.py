"""A server started with SAGELAB_ENGINE=ray runs its training jobs and its endpoint instances as Ray tasks, end to
end through boto3."""

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


@pytest.mark.slow
def test_endpoint_instances_run_on_ray_and_answer(ray_server, tmp_path):
    from xgb_artifact import create_model, csv_body

    sm, s3, rt = (ray_server.client(name) for name in ("sagemaker", "s3", "sagemaker-runtime"))
    bucket = unique("ray-serving")
    s3.create_bucket(Bucket=bucket)
    model = create_model(sm, s3, bucket, unique("model"))
    endpoint = unique("ray-endpoint")
    sm.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[{
        "VariantName": "main", "ModelName": model, "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    answer = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_body(3))
    assert len(answer["Body"].read().decode().split()) == 3
    # Both instances are processes under Ray's workers, and they reserve no CPU: a job still runs beside them.
    logs = str(ray_server.home / "logs" / "Endpoints" / endpoint)
    instances = [p for p in psutil.Process(ray_server.process.pid).children(recursive=True)
                 if _holds_file_under(p, logs)]
    assert len(instances) == 2
    for instance in instances:
        assert any("default_worker.py" in " ".join(a.cmdline()) or a.name().startswith("ray::")
                   for a in instance.parents()), "an endpoint instance is not under a Ray worker"
    upload_breast_cancer(s3, bucket, tmp_path)
    job = unique("beside-endpoint")
    sm.create_training_job(**job_request(job, "xgboost", bucket, {"objective": "binary:logistic", "num_round": "5"}))
    assert wait_job(sm, job)["TrainingJobStatus"] == "Completed"
    sm.delete_endpoint(EndpointName=endpoint)


def _holds_file_under(process: psutil.Process, folder: str) -> bool:
    try:
        return any(f.path.startswith(folder) for f in process.open_files())
    except psutil.Error:
        return False
