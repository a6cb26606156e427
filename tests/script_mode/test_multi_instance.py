"""Training jobs with InstanceCount > 1, against a real server: one process per host (algo-1..N) with its
own SM_CURRENT_HOST and /opt/ml, sharded or replicated channels, torch.distributed over gloo, and a job
that fails when one host does."""

from __future__ import annotations

import json

import pytest
from conftest import unique
from helpers import wait_failed, wait_job
from script_helpers import read_tarball, script_job_request, sourcedir_tarball

PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310"

#: Reports what its host sees; only algo-1's model directory becomes the artifact.
REPORT = """
import json, os
host = os.environ["SM_CURRENT_HOST"]
seen = {
    "host": host,
    "hosts": json.loads(os.environ["SM_HOSTS"]),
    "resource_current_host": json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"],
    "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "config": sorted(os.listdir(os.environ["SM_CHANNEL_CONFIG"])),
    "master": os.environ["MASTER_ADDR"],
}
print("SEEN " + json.dumps(seen, sort_keys=True))
with open(os.path.join(os.environ["SM_MODEL_DIR"], "host.txt"), "w") as f:
    f.write(host)
os.makedirs("/opt/ml/checkpoints", exist_ok=True)
with open(f"/opt/ml/checkpoints/{host}.txt", "w") as f:
    f.write(host)
"""

#: Two ranks meet over gloo and sum their ranks (+1); rank 0 saves the result.
DDP = """
import json, os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
value = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(value)
print(f"rank {dist.get_rank()} of {dist.get_world_size()} on {os.environ['SM_CURRENT_HOST']}: sum={value.item()}")
if dist.get_rank() == 0:
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "sum.json"), "w") as f:
        json.dump({"sum": value.item(), "world": dist.get_world_size(),
                   "local_rank": os.environ["LOCAL_RANK"]}, f)
dist.destroy_process_group()
"""

#: algo-2 fails at once; algo-1 would wait for it forever.
ONE_FAILS = """
import os, sys, time
if os.environ["SM_CURRENT_HOST"] == "algo-2":
    with open("/opt/ml/output/failure", "w") as f:
        f.write("algo-2 cannot go on")
    sys.exit(3)
time.sleep(300)
"""


def _request(name: str, bucket: str, s3, script: str, **extra) -> dict:
    s3.put_object(Bucket=bucket, Key=f"{name}/src.tar.gz", Body=sourcedir_tarball({"train.py": script}))
    request = script_job_request(name, bucket, f"s3://{bucket}/{name}/src.tar.gz", "train.py", **extra)
    request["ResourceConfig"]["InstanceCount"] = 2
    return request


@pytest.mark.slow
def test_each_host_gets_its_own_environment_and_share_of_the_data(server, sm, s3, bucket):
    for index in range(4):
        s3.put_object(Bucket=bucket, Key=f"shards/part-{index}.csv", Body=f"{index}\n".encode())
    s3.put_object(Bucket=bucket, Key="config/settings.json", Body=b"{}")
    name = unique("two-hosts")
    request = _request(name, bucket, s3, REPORT, CheckpointConfig={"S3Uri": f"s3://{bucket}/ckpt/{name}"})
    request["InputDataConfig"] = [
        {"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/shards/", "S3DataDistributionType": "ShardedByS3Key"}}},
        {"ChannelName": "config", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/config/",
            "S3DataDistributionType": "FullyReplicated"}}}]
    sm.create_training_job(**request)
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["ResourceConfig"]["InstanceCount"] == 2
    log = (server.home / "logs" / "TrainingJobs" / f"{name}.log").read_text()
    seen = {s["host"]: s for s in (json.loads(line.split("SEEN ", 1)[1]) for line in log.splitlines()
                                   if "SEEN " in line)}
    assert set(seen) == {"algo-1", "algo-2"}
    for host, report in seen.items():
        assert report["hosts"] == ["algo-1", "algo-2"]
        assert report["resource_current_host"] == host
        assert report["config"] == ["settings.json"]
        assert report["master"] == "127.0.0.1"
    assert seen["algo-1"]["train"] == ["part-0.csv", "part-2.csv"]
    assert seen["algo-2"]["train"] == ["part-1.csv", "part-3.csv"]
    assert read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"]) == {"host.txt": b"algo-1"}
    # Every host's /opt/ml/checkpoints is the job's one folder, synced to CheckpointConfig.S3Uri.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"ckpt/{name}/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed) == ["algo-1.txt", "algo-2.txt"]


@pytest.mark.slow
# What the SDK sets for distribution={"torch_distributed": ...} and for {"pytorchddp": ...}.
@pytest.mark.parametrize("flag", ["sagemaker_torch_distributed_enabled", "sagemaker_distributed_dataparallel_enabled"])
def test_torch_distributed_meets_across_hosts(server, sm, s3, bucket, flag):
    pytest.importorskip("torch")
    name = unique("ddp")
    sm.create_training_job(**_request(name, bucket, s3, DDP, image=PYTORCH_IMAGE, hyperparameters={
        flag: "true", "sagemaker_instance_type": '"ml.g5.xlarge"'}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model = read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"])
    assert json.loads(model["sum.json"]) == {"sum": 3.0, "world": 2, "local_rank": "0"}
    log = (server.home / "logs" / "TrainingJobs" / f"{name}.log").read_text()
    assert "rank 1 of 2 on algo-2: sum=3.0" in log


@pytest.mark.slow
def test_the_job_fails_with_the_failing_hosts_reason(sm, s3, bucket):
    name = unique("host-fails")
    sm.create_training_job(**_request(name, bucket, s3, ONE_FAILS))
    desc = wait_failed(sm, name, timeout=120)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "algo-2 cannot go on" in desc["FailureReason"]
    assert "on host algo-2" in desc["FailureReason"]
    assert "ExitCode 3" in desc["FailureReason"]
