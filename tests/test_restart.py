"""A crash loses nothing acknowledged: objects, jobs and credentials survive; running jobs are settled."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import channel, job_request, wait_job

from sagelab.embedded import ServerProcess


def _processes_writing(path: Path, wait: float = 10) -> list[int]:
    """PIDs that still hold `path` open (Linux /proc), after giving dying processes `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        holders = []
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            try:
                if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                    holders.append(int(fd_dir.parent.name))
            except OSError:
                continue
        if not holders or time.monotonic() > deadline:
            return holders
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_during_job_then_restart(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        s3, sm = first.client("s3"), first.client("sagemaker")
        s3.create_bucket(Bucket="restart")
        s3.put_object(Bucket="restart", Key="data/train.csv", Body=b"1,1.0\n0,0.0\n" * 2000)
        sm.create_training_job(**job_request("done-before", "xgboost", "restart", {"num_round": "2"},
                                             channels=[channel("train", "s3://restart/data/")]))
        assert wait_job(sm, "done-before")["TrainingJobStatus"] == "Completed"
        sm.create_training_job(**job_request("running", "xgboost", "restart",
                                             {"num_round": "1000000", "max_depth": "10"},
                                             channels=[channel("train", "s3://restart/data/")]))
        deadline = time.monotonic() + 60
        while sm.describe_training_job(TrainingJobName="running")["SecondaryStatus"] != "Training":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        credentials = first.credentials()
    finally:
        first.kill()

    second = ServerProcess(home).start()
    try:
        assert second.credentials() == credentials
        s3, sm = second.client("s3"), second.client("sagemaker")
        assert s3.get_object(Bucket="restart", Key="data/train.csv")["Body"].read().startswith(b"1,1.0\n")
        assert sm.describe_training_job(TrainingJobName="done-before")["TrainingJobStatus"] == "Completed"
        running = sm.describe_training_job(TrainingJobName="running")
        assert running["TrainingJobStatus"] == "Failed"
        assert "server stopped" in running["FailureReason"]
        time.sleep(1.5)
        # The orphaned job process died with the server: nothing changes the settled job afterwards.
        again = sm.describe_training_job(TrainingJobName="running")
        assert again["TrainingJobStatus"] == "Failed"
        assert again["LastModifiedTime"] == running["LastModifiedTime"]
        assert _processes_writing(home / "logs" / "TrainingJobs" / "running.log") == []
    finally:
        second.stop()


def test_credentials_file_is_private_and_stable(server):
    path = server.home / "credentials"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.startswith("[default]\n") and "aws_access_key_id" in text and "aws_secret_access_key" in text


def test_root_credentials_from_environment(tmp_path):
    env = {"SAGELAB_ROOT_ACCESS_KEY_ID": "AKIAEXAMPLEROOT00001", "SAGELAB_ROOT_SECRET_ACCESS_KEY": "s" * 40}
    with ServerProcess(tmp_path / "home", env=env) as srv:
        assert srv.credentials() == ("AKIAEXAMPLEROOT00001", "s" * 40)
        assert srv.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


SLEEPER = """
    import os, pathlib, time
    marks = pathlib.Path(os.environ["SM_HP_MARKS"])
    (marks / str(os.getpid())).write_text("started")
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_retry_strategy_retries_a_job_a_crash_ended_until_its_attempts_run_out(tmp_path):
    from script_mode.script_helpers import script_job_request, sourcedir_tarball

    home, marks = tmp_path / "home", tmp_path / "marks"
    marks.mkdir()

    def crash_while_attempt_runs(attempt: int) -> None:
        server = ServerProcess(home).start()
        try:
            sm = server.client("sagemaker")
            if attempt == 1:
                s3 = server.client("s3")
                s3.create_bucket(Bucket="retry")
                s3.put_object(Bucket="retry", Key="src.tar.gz", Body=sourcedir_tarball({"sleep.py": SLEEPER}))
                sm.create_training_job(**script_job_request(
                    "retried", "retry", "s3://retry/src.tar.gz", "sleep.py", hyperparameters={"marks": f'"{marks}"'},
                    RetryStrategy={"MaximumRetryAttempts": 1}))
            deadline = time.monotonic() + 60
            while len(list(marks.iterdir())) < attempt:
                assert time.monotonic() < deadline, f"attempt {attempt} never started"
                time.sleep(0.1)
            desc = sm.describe_training_job(TrainingJobName="retried")
            assert desc["TrainingJobStatus"] == "InProgress"
            if attempt == 2:
                assert desc["SecondaryStatusTransitions"][-1]["Status"] in ("Starting", "Downloading", "Training")
                assert any("retry 1 of the RetryStrategy" in t.get("StatusMessage", "")
                           for t in desc["SecondaryStatusTransitions"])
        finally:
            server.kill()

    crash_while_attempt_runs(1)
    crash_while_attempt_runs(2)  # the restarted server retried it
    last = ServerProcess(home).start()
    try:
        desc = last.client("sagemaker").describe_training_job(TrainingJobName="retried")
        assert desc["TrainingJobStatus"] == "Failed" and "server stopped" in desc["FailureReason"]
        assert desc["RetryStrategy"] == {"MaximumRetryAttempts": 1}
    finally:
        last.stop()
