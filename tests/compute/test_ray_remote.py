"""A remote Ray cluster, joined through Ray's client (`ray://host:port`): the engine passes the kit on it, and
a server started with SAGELAB_ENGINE=ray://... runs its training jobs there, not on a Ray of its own."""

from __future__ import annotations

import pathlib

import psutil
import pytest
from conftest import unique
from helpers import job_request, metrics_of, upload_breast_cancer, wait_job

from sagelab.embedded import ServerProcess
from sagelab.testing import engine_kit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from sagelab.testing.ray_cluster import remote_ray

    with remote_ray(num_cpus=2) as remote:
        yield remote


def test_the_engine_passes_the_kit_on_a_remote_cluster(cluster, tmp_path):
    from sagelab.compute.ray_engine import RayEngine

    engine = RayEngine(cluster.client_address, max_concurrency=2)
    try:
        for check in engine_kit.CHECKS:
            folder = tmp_path / check.__name__
            folder.mkdir()
            check(engine, folder)
    finally:
        engine.close()


def test_a_server_runs_its_training_jobs_on_the_remote_cluster(cluster, tmp_path):
    server = ServerProcess(tmp_path / "home", env={"SAGELAB_ENGINE": cluster.client_address,
                                                   "RAY_USAGE_STATS_ENABLED": "0"}).start()
    try:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("remote-ray")
        s3.create_bucket(Bucket=bucket)
        upload_breast_cancer(s3, bucket, tmp_path)
        name = unique("xgb-remote")
        sm.create_training_job(**job_request(name, "xgboost", bucket, {
            "objective": "binary:logistic", "num_round": "10", "max_depth": "3", "eval_metric": "auc"}))
        desc = wait_job(sm, name)
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        assert metrics_of(desc)["validation:auc"] > 0.9
        # The job ran in a worker of the cluster's head, and the server started no Ray of its own.
        server_children = psutil.Process(server.process.pid).children(recursive=True)
        assert not [p for p in server_children if "raylet" in " ".join(p.cmdline())]
        log = pathlib.Path(tmp_path / "home" / "logs" / "TrainingJobs" / f"{name}.log").read_text()
        assert "validation-auc" in log
    finally:
        server.stop(timeout=30)
