"""One server of two dies under load: the other takes its jobs over, and no job is lost or runs twice.

Two `sagelab server` processes share a PostgreSQL database and a home. Script-mode training jobs, created on
both, mark each attempt's start and end in a folder outside the lake, with the attempt's process id. One
server is SIGKILLed while its jobs run; the other notices (its takeover scan, every 0.3 s here) and retries
them under their RetryStrategy. Lost: an acknowledged job that does not end Completed. Doubled: a job whose
work ran to its end twice, or a retry that started while an earlier attempt still lived.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from script_mode.script_helpers import script_job_request, sourcedir_tarball

from sagelab.embedded import ServerProcess

pytestmark = pytest.mark.slow

SCRIPT = """
    import argparse, os, pathlib, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--marks"); parser.add_argument("--job"); parser.add_argument("--seconds", type=float)
    args = parser.parse_args()
    marks = pathlib.Path(args.marks)
    (marks / f"{args.job}.{os.getpid()}.start").write_text(str(time.time()))
    time.sleep(args.seconds)
    pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(args.job)
    (marks / f"{args.job}.{os.getpid()}.end").write_text(str(time.time()))
"""


def _attempts(marks: Path, job: str) -> tuple[list[int], list[int]]:
    starts = sorted(int(p.name.split(".")[1]) for p in marks.glob(f"{job}.*.start"))
    ends = sorted(int(p.name.split(".")[1]) for p in marks.glob(f"{job}.*.end"))
    return starts, ends


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_server_loses_no_job_and_runs_none_twice(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"kill_{uuid.uuid4().hex[:10]}").replace(
        "postgresql+psycopg://", "postgresql://", 1)
    home, marks = tmp_path / "home", tmp_path / "marks"
    marks.mkdir()
    env = {"SAGELAB_DATABASE_URL": url, "SAGELAB_TAKEOVER_SCAN_SECONDS": "0.3", "SAGELAB_MAX_CONCURRENT_JOBS": "4"}
    doomed = ServerProcess(home, env=env).start()
    survivor = ServerProcess(home, env=env).start()
    try:
        s3 = survivor.client("s3")
        s3.create_bucket(Bucket="takeover")
        s3.put_object(Bucket="takeover", Key="code/sourcedir.tar.gz", Body=sourcedir_tarball({"train.py": SCRIPT}))
        clients = {"doomed": doomed.client("sagemaker"), "survivor": survivor.client("sagemaker")}

        def create(job: str, on: str, seconds: float) -> None:
            clients[on].create_training_job(**script_job_request(
                job, "takeover", "s3://takeover/code/sourcedir.tar.gz", "train.py",
                hyperparameters={"marks": f'"{marks}"', "job": f'"{job}"', "seconds": f'"{seconds}"'},
                RetryStrategy={"MaximumRetryAttempts": 2}))

        jobs = {f"before-{i}": ("doomed" if i % 2 else "survivor") for i in range(8)}
        for job, on in jobs.items():
            create(job, on, 4)
        doomed_jobs = [job for job, on in jobs.items() if on == "doomed"]
        deadline = time.monotonic() + 120
        while not all(_attempts(marks, job)[0] for job in doomed_jobs):  # its jobs run when it dies
            assert time.monotonic() < deadline, "the doomed server's jobs never started"
            time.sleep(0.1)
        doomed.kill()
        killed_at = time.time()
        for i in range(4):  # the load goes on at the survivor
            jobs[f"after-{i}"] = "survivor"
            create(f"after-{i}", "survivor", 1)

        sm = clients["survivor"]
        ended = {job: _wait_ended(sm, job) for job in jobs}
        lost = [job for job, desc in ended.items() if desc["TrainingJobStatus"] != "Completed"]
        doubled = []
        retried = []
        for job in jobs:
            starts, ends = _attempts(marks, job)
            if len(ends) != 1:
                doubled.append(job)
            if len(starts) > 1:
                retried.append(job)
                # Every earlier attempt died with its server before the retry began, and never ended.
                assert all(not _alive(pid) for pid in starts if pid not in ends), job
        # The attempt that ended, of every retried job, started after the kill.
        retry_starts = [float((marks / f"{job}.{_attempts(marks, job)[1][0]}.start").read_text()) for job in retried
                        if job not in doubled]
        print(f"\nkill test: {len(jobs)} jobs, {len(doomed_jobs)} on the killed server; lost {len(lost)}, "
              f"doubled {len(doubled)}, retried {len(retried)}")
        assert lost == [] and doubled == [], (lost, doubled, {j: ended[j].get("FailureReason") for j in lost})
        assert set(retried) == set(doomed_jobs)
        for job in retried:
            desc = ended[job]
            assert any("retry 1 of the RetryStrategy" in t.get("StatusMessage", "")
                       for t in desc["SecondaryStatusTransitions"]), desc["SecondaryStatusTransitions"]
        assert all(start > killed_at for start in retry_starts)
        assert "Traceback" not in survivor.log_path.read_text()
    finally:
        doomed.kill()
        survivor.stop()


def _wait_ended(sm, job: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_training_job(TrainingJobName=job)
        if desc["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return desc
        assert time.monotonic() < deadline, f"{job} never ended: {desc['TrainingJobStatus']}"
        time.sleep(0.2)
