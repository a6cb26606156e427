"""What runs inside a Glue job run's process: fetch the script, run it with Glue's arguments, settle.

The script runs as a child process of this task (so stopping the task stops it) with:
- argv: `--JOB_NAME <job> --JOB_ID <id> --JOB_RUN_ID <run> --<key> <value> ...`, as Glue passes them;
- AWS_ENDPOINT_URL, credentials and region in its environment, so boto3 reaches this sagelab server;
- an `awsglue` module on its path offering `awsglue.utils.getResolvedOptions`;
- SAGELAB_JOB_BOOKMARK_* variables read by `sagelab.glue.bookmarks.new_objects` (see there).

A `glueetl` script also finds PySpark and the Spark half of the shim (`awsglue.context`, `awsglue.job`, ...),
and PYSPARK_SUBMIT_ARGS that size its local Spark (`sagelab.glue.spark`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import sagelab
from sagelab.compute.lifetime import die_with_parent
from sagelab.glue import spark, states
from sagelab.glue.service import error_log_path, run_log_path
from sagelab.glue.spec import SPARK_COMMAND, script_arguments
from sagelab.jobs.process import run_in_job_process
from sagelab.lake.uris import parse_s3_uri
from sagelab.process_parts import ProcessParts
from sagelab.security.credentials import credentials_path, read_credentials_file
from sagelab.storage.resources import Resource

SHIM = Path(__file__).with_name("shim")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def run_job(log: TextIO, *, settings: dict[str, Any], run_id: str, lease: str, server_url: str) -> None:
    run_in_job_process(log, settings, lambda parts: JobRun(parts, run_id, lease, log, server_url).run(),
                       what="job run")


def failure_message(log_text: str, exit_code: int) -> str:
    """The script's last exception line (how Glue reports a failed Python shell job), else the exit code."""
    for line in reversed(log_text.splitlines()):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()[:2048]
    return f"Command failed with exit code {exit_code}"


class JobRun:
    def __init__(self, parts: ProcessParts, run_id: str, lease: str, log: TextIO, server_url: str):
        self.parts = parts
        self.run_id = run_id
        self.lease = lease
        self.log = log
        self.server_url = server_url
        self.work_dir: Path = parts.home.work / "GlueJobs" / run_id

    def _update(self, mutate) -> None:
        self.parts.resources.update(states.RUN_KIND, self.run_id, mutate, lease=self.lease)

    def _bookmark_state(self, job_name: str) -> dict[str, Any]:
        job = self.parts.resources.get(states.JOB_KIND, job_name)
        return dict(((job.doc.get("_Bookmark") or {}).get("State") or {}) if job else {})

    def _commit_bookmark(self, job_name: str, progress: dict[str, Any]) -> None:
        """Merge what this (successful) run processed into the job's bookmark."""
        def mutate(res: Resource) -> None:
            entry = res.doc.get("_Bookmark") or {"Version": 0, "Run": 0, "State": {}}
            state = dict(entry.get("State") or {})
            state.update(progress)
            res.doc["_Bookmark"] = {"Version": entry["Version"] + 1, "Run": entry["Run"] + 1, "Attempt": 0,
                                    "PreviousRunId": entry.get("RunId"), "RunId": self.run_id, "State": state}

        self.parts.resources.update(states.JOB_KIND, job_name, mutate)

    def _log_path(self, job_name: str, *, spark: bool) -> Path:
        return run_log_path(self.parts.home.logs, job_name, self.run_id, spark=spark)

    def _log_text(self, job_name: str, *, spark: bool) -> str:
        """The run's output, then (for glueetl) its stderr, where a traceback lands."""
        path = self._log_path(job_name, spark=spark)
        paths = [path, error_log_path(path)] if spark else [path]
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def run(self) -> None:
        run = self.parts.resources.get(states.RUN_KIND, self.run_id).doc
        job = self.parts.resources.get(states.JOB_KIND, run["JobName"])
        if job is None:
            self._update(lambda r: states.finish(r, "FAILED", f"Job {run['JobName']} no longer exists."))
            return
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True)
        try:
            self._run(job.doc, run)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _run(self, job: dict[str, Any], run: dict[str, Any]) -> None:
        location = parse_s3_uri(job["Command"]["ScriptLocation"], field="Command.ScriptLocation")
        script = self.work_dir / (location.key.rsplit("/", 1)[-1] or "script.py")
        try:
            script.write_bytes(b"".join(self.parts.blobs.read(location.bucket, location.key)))
        except Exception as exc:  # noqa: BLE001 - a missing script is the run's failure reason
            message = getattr(exc, "message", str(exc))
            self._update(lambda r: states.finish(r, "FAILED", f"Cannot read the job script "
                                                 f"{job['Command']['ScriptLocation']}: {message}"))
            return
        is_spark = job["Command"]["Name"] == SPARK_COMMAND
        if is_spark and not spark.have_pyspark():
            self._update(lambda r: states.finish(r, "FAILED", spark.NO_PYSPARK))
            return
        arguments = script_arguments(job, run)
        option = arguments.get("--job-bookmark-option", "job-bookmark-disable")
        job_id = "j_" + hashlib.sha256(job["Name"].encode()).hexdigest()
        argv = ["--JOB_NAME", job["Name"], "--JOB_ID", job_id, "--JOB_RUN_ID", self.run_id]
        for key, value in arguments.items():
            argv += [key, value]
        bookmark_in = self.work_dir / "bookmark-state.json"
        bookmark_out = self.work_dir / "bookmark-progress.json"
        bookmark_in.write_text(json.dumps(self._bookmark_state(job["Name"])))

        def running(res) -> None:
            res.status = "RUNNING"
            res.doc["JobRunState"] = "RUNNING"
            res.doc["LastModifiedOn"] = res.doc["_RunningSince"] = time.time()

        self._update(running)
        self.log.write(f"sagelab: running {job['Command']['ScriptLocation']} {' '.join(argv)}\n")
        self.log.flush()
        env = self._environment(option, bookmark_in, bookmark_out)
        if is_spark:
            env.update(spark.spark_environment({**job, **_run_capacity(run)}, self.work_dir))
        with contextlib.ExitStack() as files:
            stderr: Any = subprocess.STDOUT
            if is_spark:
                stderr = files.enter_context(error_log_path(self._log_path(job["Name"], spark=True)).open("ab"))
            exit_code = subprocess.call([sys.executable, "-u", str(script), *argv], cwd=self.work_dir, env=env,
                                        stdin=subprocess.DEVNULL, stdout=self.log.fileno(), stderr=stderr,
                                        preexec_fn=die_with_parent)
        if exit_code == 0:
            if option == "job-bookmark-enable" and bookmark_out.exists():
                self._commit_bookmark(job["Name"], json.loads(bookmark_out.read_text()))
            self._update(lambda r: states.finish(r, "SUCCEEDED"))
            return
        self.log.flush()
        text = self._log_text(job["Name"], spark=is_spark)
        reason = failure_message(text, exit_code)
        self._update(lambda r: states.finish(r, "FAILED", reason))

    def _environment(self, option: str, bookmark_in: Path, bookmark_out: Path) -> dict[str, str]:
        home = self.parts.home.root
        creds = read_credentials_file(credentials_path(home))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGELAB_"))}
        # The script runs in its own folder: paths must be absolute, and it imports the same sagelab.
        python_path = [str(SHIM), str(Path(sagelab.__file__).resolve().parents[1]),
                       *(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
        env.update({
            "AWS_ENDPOINT_URL": self.server_url, "AWS_DEFAULT_REGION": self.parts.settings.region,
            "AWS_REGION": self.parts.settings.region, "PYTHONPATH": os.pathsep.join(python_path),
            "SAGELAB_JOB_BOOKMARK_OPTION": option, "SAGELAB_JOB_BOOKMARK_STATE": str(bookmark_in),
            "SAGELAB_JOB_BOOKMARK_OUT": str(bookmark_out), "PYTHONUNBUFFERED": "1",
        })
        if creds is not None:
            env["AWS_ACCESS_KEY_ID"] = creds.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = creds.secret_access_key
        return env


def _run_capacity(run: dict[str, Any]) -> dict[str, Any]:
    """The run's own WorkerType and NumberOfWorkers (StartJobRun may override the job's)."""
    return {k: run[k] for k in ("WorkerType", "NumberOfWorkers") if run.get(k)}
