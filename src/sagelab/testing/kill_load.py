"""The kill test: one server of two on a shared PostgreSQL database is SIGKILLed under load, and what happened
to every acknowledged job is counted.

Script-mode training jobs (the scikit-learn image's contract, `train.py` in a sourcedir tarball) are created
on both servers, alternately, with a RetryStrategy. Each attempt marks its start and its end, with its
process id, in a folder outside the lake. Once every job of the doomed server has started, it is killed;
more jobs keep coming to the survivor. Then every job is waited for, and counted:

- lost: acknowledged (CreateTrainingJob answered) but not Completed in the end;
- doubled: its work ran to its end more than once, or a retry started while an earlier attempt still lived;
- retried: it has more than one attempt (those the dead server was running).

Used by tests/storage/test_takeover.py (asserts 0 lost, 0 doubled) and benchmarks/takeover.py (prints the
counts and how long the takeover took).
"""

from __future__ import annotations

import dataclasses
import io
import os
import statistics
import tarfile
import textwrap
import time
from pathlib import Path

from sagelab.embedded import ServerProcess

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
BUCKET = "kill-load"

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


@dataclasses.dataclass
class KillReport:
    jobs: int
    on_killed_server: int
    lost: list[str]
    doubled: list[str]
    retried: list[str]
    failure_reasons: dict[str, str]
    #: Seconds from the kill to each retried job's retry being recorded (its attempt then waits for a slot).
    takeover_seconds: list[float]
    #: Each retried job's SecondaryStatusTransitions.
    transitions: dict[str, list[dict]]

    def summary(self) -> str:
        median = f"{statistics.median(self.takeover_seconds):.2f} s" if self.takeover_seconds else "-"
        return (f"{self.jobs} jobs, {self.on_killed_server} on the killed server: lost {len(self.lost)}, "
                f"doubled {len(self.doubled)}, retried {len(self.retried)}; kill to retry median {median}")


def _sourcedir() -> bytes:
    data = textwrap.dedent(SCRIPT).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _request(job: str, marks: Path, seconds: float) -> dict:
    """CreateTrainingJob as the SDK's SKLearn estimator sends it (hyperparameters JSON-encoded)."""
    return {
        "TrainingJobName": job,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {"sagemaker_program": '"train.py"',
                            "sagemaker_submit_directory": f'"s3://{BUCKET}/code/sourcedir.tar.gz"',
                            "marks": f'"{marks}"', "job": f'"{job}"', "seconds": f'"{seconds}"'},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
    }


def _attempts(marks: Path, job: str, end: str) -> list[int]:
    return sorted(int(p.name.split(".")[1]) for p in marks.glob(f"{job}.*.{end}"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_kill_test(database_url: str, folder: Path, *, before: int = 8, after: int = 4, job_seconds: float = 4,
                  scan_seconds: float = 0.3, concurrency: int = 4, timeout: float = 180) -> KillReport:
    """Two servers on `database_url` with homes under `folder`; `before` jobs (half on the doomed server)
    running when it dies, `after` more on the survivor after."""
    home, marks = folder / "home", folder / "marks"
    marks.mkdir(parents=True)
    env = {"SAGELAB_DATABASE_URL": database_url, "SAGELAB_TAKEOVER_SCAN_SECONDS": str(scan_seconds),
           "SAGELAB_MAX_CONCURRENT_JOBS": str(concurrency)}
    doomed = ServerProcess(home, env=env).start()
    survivor = ServerProcess(home, env=env).start()
    try:
        s3 = survivor.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=_sourcedir())
        clients = {"doomed": doomed.client("sagemaker"), "survivor": survivor.client("sagemaker")}
        jobs = {f"before-{i}": ("doomed" if i % 2 else "survivor") for i in range(before)}
        for job, on in jobs.items():
            clients[on].create_training_job(**_request(job, marks, job_seconds))
        doomed_jobs = [job for job, on in jobs.items() if on == "doomed"]
        deadline = time.monotonic() + timeout
        while not all(_attempts(marks, job, "start") for job in doomed_jobs):  # its jobs run when it dies
            if time.monotonic() > deadline:
                raise TimeoutError("the doomed server's jobs never started")
            time.sleep(0.1)
        killed_at = time.time()
        doomed.kill()
        for i in range(after):  # the load goes on at the survivor
            jobs[f"after-{i}"] = "survivor"
            clients["survivor"].create_training_job(**_request(f"after-{i}", marks, 1))
        ended = {job: _wait_ended(clients["survivor"], job, timeout) for job in jobs}
        doubled, retried, takeover = [], [], []
        for job in jobs:
            starts, ends = _attempts(marks, job, "start"), _attempts(marks, job, "end")
            earlier_alive = any(_alive(pid) for pid in starts if pid not in ends)
            if len(ends) > 1 or earlier_alive:
                doubled.append(job)
            if len(starts) > 1:
                retried.append(job)
                retry = [t for t in ended[job]["SecondaryStatusTransitions"]
                         if "retry 1 of the RetryStrategy" in t.get("StatusMessage", "")]
                if retry:
                    takeover.append(retry[0]["StartTime"].timestamp() - killed_at)
        lost = [job for job, desc in ended.items() if desc["TrainingJobStatus"] != "Completed"]
        return KillReport(
            jobs=len(jobs), on_killed_server=len(doomed_jobs), lost=lost, doubled=doubled, retried=retried,
            failure_reasons={job: ended[job].get("FailureReason", "") for job in lost},
            takeover_seconds=takeover,
            transitions={job: ended[job]["SecondaryStatusTransitions"] for job in retried})
    finally:
        doomed.kill()
        survivor.stop()


def _wait_ended(sm, job: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_training_job(TrainingJobName=job)
        if desc["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job} never ended: {desc['TrainingJobStatus']}")
        time.sleep(0.2)
