"""Managed spot training with checkpoints, against a real server: a spot job is interrupted (by the admin
call, by the setting, by a server restart), restarts, finds its checkpoints restored, and resumes from them."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import botocore.exceptions
import pytest
from conftest import unique
from helpers import wait_job
from script_helpers import read_tarball, script_job_request, sourcedir_tarball

from sagelab.embedded import ServerProcess

#: Counts steps 0..5, keeping the last one in /opt/ml/checkpoints. A first attempt stops after step 2 and
#: waits to be interrupted; a later one resumes after the checkpointed step.
TRAIN = """
import json, os, time

folder = "/opt/ml/checkpoints"
os.makedirs(folder, exist_ok=True)
state = os.path.join(folder, "state.json")
first = 0
if os.path.exists(state):
    first = json.load(open(state))["step"] + 1
    print(f"resuming from checkpoint: next step {first}")
    if os.environ.get("HANG_ON_RESUME"):
        time.sleep(120)
for step in range(first, 6):
    with open(state + ".tmp", "w") as f:
        json.dump({"step": step}, f)
    os.replace(state + ".tmp", state)
    print(f"step {step}")
    time.sleep(0.3)
    if first == 0 and step == 2:
        time.sleep(120)  # the first attempt is interrupted here
with open(os.path.join(os.environ["SM_MODEL_DIR"], "run.json"), "w") as f:
    json.dump({"resumed_at": first, "checkpoints_seen": sorted(os.listdir(folder))}, f)
"""


def _spot_request(name: str, bucket: str, s3, **extra) -> dict:
    s3.put_object(Bucket=bucket, Key=f"{name}/sourcedir.tar.gz", Body=sourcedir_tarball({"train.py": TRAIN}))
    return script_job_request(
        name, bucket, f"s3://{bucket}/{name}/sourcedir.tar.gz", "train.py",
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        CheckpointConfig={"S3Uri": f"s3://{bucket}/checkpoints/{name}"}, **extra)


def _wait_for_checkpoint(s3, bucket: str, name: str, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = s3.get_object(Bucket=bucket, Key=f"checkpoints/{name}/state.json")["Body"].read()
            if json.loads(body)["step"] >= step:
                return
        except (botocore.exceptions.ClientError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"no checkpoint of step {step} for {name}")


def _assert_resumed(sm, s3, bucket: str, name: str) -> dict:
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    statuses = [t["Status"] for t in desc["SecondaryStatusTransitions"]]
    interrupted = statuses.index("Interrupted")
    assert statuses[interrupted:] == ["Interrupted", "Starting", "Downloading", "Training", "Uploading",
                                      "Completed"], statuses
    run = json.loads(read_tarball(s3, desc["ModelArtifacts"]["S3ModelArtifacts"])["run.json"])
    assert run == {"resumed_at": 3, "checkpoints_seen": ["state.json"]}
    final = json.loads(s3.get_object(Bucket=bucket, Key=f"checkpoints/{name}/state.json")["Body"].read())
    assert final == {"step": 5}
    assert desc["EnableManagedSpotTraining"] is True
    assert desc["BillableTimeInSeconds"] < desc["TrainingTimeInSeconds"], desc
    return desc


@pytest.mark.slow
def test_an_interrupted_spot_job_restarts_from_its_checkpoint(server, sm, s3, bucket):
    name = unique("spot")
    sm.create_training_job(**_spot_request(name, bucket, s3))
    _wait_for_checkpoint(s3, bucket, name, step=2)
    done = subprocess.run([sys.executable, "-m", "sagelab", "spot-interrupt", name, "--home", str(server.home)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    desc = _assert_resumed(sm, s3, bucket, name)
    message = next(t["StatusMessage"] for t in desc["SecondaryStatusTransitions"] if t["Status"] == "Interrupted")
    assert "spot-interrupt" in message
    log = server.home / "logs" / "TrainingJobs" / f"{name}.log"
    assert "resuming from checkpoint: next step 3" in log.read_text()


@pytest.mark.slow
def test_a_restart_gets_only_what_is_left_of_max_wait(server, sm, s3, bucket):
    name = unique("spot-wait")
    request = _spot_request(name, bucket, s3, Environment={"HANG_ON_RESUME": "1"})
    # Any time spent before the restart leaves the new attempt less than MaxRuntimeInSeconds.
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 20, "MaxWaitTimeInSeconds": 21}
    sm.create_training_job(**request)
    _wait_for_checkpoint(s3, bucket, name, step=2)
    done = subprocess.run([sys.executable, "-m", "sagelab", "spot-interrupt", name, "--home", str(server.home)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxWaitTimeExceeded"
    statuses = [t["Status"] for t in desc["SecondaryStatusTransitions"]]
    assert statuses[-5:] == ["Interrupted", "Starting", "Downloading", "Training", "MaxWaitTimeExceeded"]


def test_only_a_running_spot_job_can_be_interrupted(server, sm, s3, bucket):
    name = unique("not-spot")
    s3.put_object(Bucket=bucket, Key="src.tar.gz", Body=sourcedir_tarball({"train.py": "print('hi')\n"}))
    sm.create_training_job(**script_job_request(name, bucket, f"s3://{bucket}/src.tar.gz", "train.py"))
    done = subprocess.run([sys.executable, "-m", "sagelab", "spot-interrupt", name, "--home", str(server.home)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "EnableManagedSpotTraining" in done.stderr


@pytest.mark.parametrize(("changes", "fields"), [
    ({"StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 300}},
     ("MaxWaitTimeInSeconds", "MaxRuntimeInSeconds")),
    ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 600}},
     ("MaxWaitTimeInSeconds", "MaxRuntimeInSeconds")),
    ({"EnableManagedSpotTraining": False, "StoppingCondition": {"MaxRuntimeInSeconds": 60,
                                                                "MaxWaitTimeInSeconds": 600}},
     ("MaxWaitTimeInSeconds", "EnableManagedSpotTraining")),
    ({"CheckpointConfig": {"S3Uri": "https://example.com/checkpoints"}}, ("CheckpointConfig.S3Uri", "s3://")),
    ({"CheckpointConfig": {"S3Uri": "/tmp/checkpoints"}}, ("s3Uri", "s3")),
])
def test_bad_spot_settings_are_refused(sm, bucket, changes, fields):
    request = script_job_request(unique("bad-spot"), bucket, f"s3://{bucket}/src.tar.gz", "train.py")
    request.update({"EnableManagedSpotTraining": True,
                    "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}, **changes})
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.create_training_job(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    for field in fields:
        assert field in error["Message"]


@pytest.mark.slow
def test_the_setting_interrupts_and_a_restarted_server_resumes(tmp_path):
    """`spot_interruption_after_seconds` interrupts a spot job's first attempt by itself; a spot job with
    checkpoints whose server stops is resumed by the next one instead of failing."""
    home = tmp_path / "home"
    first = ServerProcess(home, env={"SAGELAB_SPOT_INTERRUPTION_AFTER_SECONDS": "1.5"}).start()
    try:
        s3, sm = first.client("s3"), first.client("sagemaker")
        s3.create_bucket(Bucket="spot")
        sm.create_training_job(**_spot_request("by-setting", "spot", s3))
        desc = _assert_resumed(sm, s3, "spot", "by-setting")
        message = next(t["StatusMessage"] for t in desc["SecondaryStatusTransitions"]
                       if t["Status"] == "Interrupted")
        assert "spot_interruption_after_seconds" in message
    finally:
        first.stop()

    second = ServerProcess(home).start()
    try:
        s3, sm = second.client("s3"), second.client("sagemaker")
        sm.create_training_job(**_spot_request("across-restart", "spot", s3))
        _wait_for_checkpoint(s3, "spot", "across-restart", step=2)
    finally:
        second.stop()  # a clean shutdown; a crash leaves the job InProgress just the same
    third = ServerProcess(home).start()
    try:
        s3, sm = third.client("s3"), third.client("sagemaker")
        desc = _assert_resumed(sm, s3, "spot", "across-restart")
        message = next(t["StatusMessage"] for t in desc["SecondaryStatusTransitions"]
                       if t["Status"] == "Interrupted")
        assert "server" in message
    finally:
        third.stop()
