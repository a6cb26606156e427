"""Glue jobs and job runs: define, start, watch, stop, and the job bookmark.

A job is a resource document (GetJob's shape); each run is another (GetJobRun's shape) with a lease, run
as one task on the compute engine (`sagelab.glue.runner`). A pythonshell script's output is kept in
`<home>/logs/GlueJobs/<job>/<run id>.log`; a glueetl script's in `<home>/logs/GlueSparkJobs/<job>/`, its
stdout in `<run id>.log` and its stderr (Spark's own log among it) in `<run id>.error.log`. CloudWatch
Logs shows them as Glue does (`sagelab.monitoring.log_groups`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

from sagelab.account import Account, HomePaths
from sagelab.compute.engine import ComputeEngine, Task, TaskState, TaskStatus
from sagelab.errors import AlreadyExistsError, ConcurrentRunsExceeded, EntityNotFound
from sagelab.glue import spec as job_spec
from sagelab.glue import states
from sagelab.settings import Settings
from sagelab.storage import tables
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, ResourceStore, public

RUNNER = "sagelab.glue.runner:run_job"
SERVER_STOPPED = "sagelab server stopped while the job run was running; the run was not resumed."


def run_log_path(logs_dir: Path, job_name: str, run_id: str, *, spark: bool = False) -> Path:
    return logs_dir / ("GlueSparkJobs" if spark else "GlueJobs") / job_name / f"{run_id}.log"


def error_log_path(output_log: Path) -> Path:
    """Where a glueetl run's stderr goes, beside its output log."""
    return output_log.with_name(output_log.name.removesuffix(".log") + ".error.log")


def task_id(run_id: str, lease: str) -> str:
    return f"glue-job-run/{run_id}/{lease}"


class GlueJobService:
    def __init__(self, *, resources: ResourceStore, engine: ComputeEngine, account: Account, home: HomePaths,
                 settings: Settings):
        self.resources = resources
        self.engine = engine
        self.account = account
        self.home = home
        #: What a run's process attaches with, and the server address its script's boto3 calls go to.
        self.settings = settings

    # --- jobs ------------------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str) -> str:
        job_spec.check_job(params)
        now = time.time()
        doc = job_spec.job_document(params, now)
        arn = self.account.arn("glue", f"job/{params['Name']}", region)
        try:
            self.resources.insert(states.JOB_KIND, params["Name"], arn, "READY", doc, created_at=now)
        except AlreadyExists:
            raise AlreadyExistsError(f"Job with name {params['Name']} already exists") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, params["Tags"])
        return params["Name"]

    def update(self, name: str, update: dict[str, Any]) -> str:
        job = self._job(name)
        params = {**update, "Name": name}
        job_spec.check_job(params)

        def mutate(res: Resource) -> None:
            private = {k: v for k, v in res.doc.items() if k.startswith("_")}
            res.doc = {**job_spec.job_document(params, time.time(), created=job.doc["CreatedOn"]), **private}

        self.resources.update(states.JOB_KIND, name, mutate)
        return name

    def _job(self, name: str) -> Resource:
        res = self.resources.get(states.JOB_KIND, name)
        if res is None:
            raise EntityNotFound(f"Job with name: {name} not found")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self._job(name).doc)

    def list(self) -> list[dict[str, Any]]:
        return [public(r.doc) for r in self.resources.list(states.JOB_KIND, sort_by="Name", descending=False)]

    def delete(self, name: str) -> str:
        # Glue answers DeleteJob for a missing job with success, naming it.
        self.resources.delete(states.JOB_KIND, name)
        return name

    # --- runs ------------------------------------------------------------------------------------------
    def _runs_of(self, job_name: str, statuses: tuple[str, ...] | None = None) -> list[Resource]:
        where = [tables.resources.c.doc["JobName"].as_string() == job_name]
        rows = self.resources.list(states.RUN_KIND, where=where)
        return [r for r in rows if statuses is None or r.status in statuses]

    def start_run(self, params: dict[str, Any]) -> str:
        job = self._job(params["JobName"])
        job_spec.check_arguments(params.get("Arguments"), "Arguments")
        spark = job.doc["Command"]["Name"] == job_spec.SPARK_COMMAND
        if spark:
            job_spec.check_run_capacity(params)
        limit = (job.doc.get("ExecutionProperty") or {}).get("MaxConcurrentRuns", 1)
        if len(self._runs_of(job.name, states.ACTIVE)) >= limit:
            raise ConcurrentRunsExceeded(f"Concurrent runs exceeded for {job.name}")
        run_id = params.get("JobRunId") or "jr_" + hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        now = time.time()
        timeout = params.get("Timeout") or job.doc.get("Timeout") or job_spec.DEFAULT_TIMEOUT_MINUTES
        doc: dict[str, Any] = {
            "Id": run_id, "Attempt": 0, "JobName": job.name, "JobMode": job.doc.get("JobMode", "SCRIPT"),
            "StartedOn": now, "LastModifiedOn": now, "JobRunState": "STARTING",
            "Arguments": params.get("Arguments") or {}, "PredecessorRuns": [], "AllocatedCapacity": 0,
            "ExecutionTime": 0, "Timeout": timeout, "MaxCapacity": params.get("MaxCapacity") or job.doc["MaxCapacity"],
            "LogGroupName": states.LOG_GROUP, "GlueVersion": job.doc.get("GlueVersion", "3.0"),
            "ExecutionClass": "STANDARD",
        }
        if spark:
            worker_type, workers = job_spec.spark_workers(params) if any(
                params.get(k) for k in ("WorkerType", "NumberOfWorkers", "MaxCapacity")) else (
                job.doc["WorkerType"], job.doc["NumberOfWorkers"])
            capacity = workers * job_spec.SPARK_WORKER_TYPES[worker_type][1]
            doc.update(WorkerType=worker_type, NumberOfWorkers=workers, LogGroupName=states.SPARK_LOG_GROUP,
                       MaxCapacity=capacity, AllocatedCapacity=int(capacity))
        previous = self._runs_of(job.name)
        if previous:
            doc["PreviousRunId"] = previous[0].name
        lease = self.resources.new_lease()
        arn = self.account.arn("glue", f"job/{job.name}/run/{run_id}")
        try:
            self.resources.insert(states.RUN_KIND, run_id, arn, "STARTING", doc, created_at=now, lease=lease)
        except AlreadyExists:
            raise AlreadyExistsError(f"Job run {run_id} already exists") from None
        settings = self.settings
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
        task = Task(id=task_id(run_id, lease), target=RUNNER, timeout=float(timeout) * 60,
                    log_path=run_log_path(self.home.logs, job.name, run_id, spark=spark),
                    args={"settings": settings.to_dict(), "run_id": run_id, "lease": lease,
                          "server_url": f"http://{host}:{settings.port}"})
        self.engine.submit(task, self._on_task_done)
        return run_id

    def _on_task_done(self, task: Task, status: TaskStatus) -> None:
        run_id, lease = task.args["run_id"], task.args["lease"]

        def settle(res: Resource) -> None:
            if res.status not in states.ACTIVE:
                return
            if status.state is TaskState.TIMED_OUT:
                states.finish(res, "TIMEOUT", f"Job run timed out after {res.doc.get('Timeout')} minutes.")
            elif status.state is TaskState.STOPPED or res.status == "STOPPING":
                states.finish(res, "STOPPED")
            else:
                states.finish(res, "FAILED", status.error or "The job run process exited before the run ended.")

        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(states.RUN_KIND, run_id, settle, lease=lease)

    def _run(self, job_name: str, run_id: str) -> Resource:
        res = self.resources.get(states.RUN_KIND, run_id)
        if res is None or res.doc.get("JobName") != job_name:
            raise EntityNotFound(f"Job Run with id: {run_id} not found for job {job_name}")
        return res

    def describe_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        self._job(job_name)
        return public(self._run(job_name, run_id).doc)

    def list_runs(self, job_name: str) -> list[dict[str, Any]]:
        self._job(job_name)
        return [public(r.doc) for r in self._runs_of(job_name)]

    def stop_runs(self, job_name: str, run_ids: list[str]) -> dict[str, Any]:
        done, errors = [], []
        for run_id in run_ids:
            res = self.resources.get(states.RUN_KIND, run_id)
            if res is None or res.doc.get("JobName") != job_name:
                errors.append({"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {
                    "ErrorCode": "EntityNotFoundException", "ErrorMessage": f"Job Run with id: {run_id} not found"}})
                continue
            if res.status not in states.ACTIVE:
                errors.append({"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {
                    "ErrorCode": "InvalidInputException",
                    "ErrorMessage": f"Job run {run_id} is {res.status} and cannot be stopped."}})
                continue
            lease = res.lease

            def stopping(r: Resource) -> None:
                if r.status in states.ACTIVE:
                    r.status = "STOPPING"
                    r.doc["JobRunState"] = "STOPPING"

            self.resources.update(states.RUN_KIND, run_id, stopping)
            try:
                self.engine.stop(task_id(run_id, lease or ""))
            except KeyError:
                self.resources.update(states.RUN_KIND, run_id, lambda r: states.finish(r, "STOPPED"))
            done.append({"JobName": job_name, "JobRunId": run_id})
        return {"SuccessfulSubmissions": done, "Errors": errors}

    # --- bookmarks -------------------------------------------------------------------------------------
    def bookmark(self, job_name: str) -> dict[str, Any]:
        job = self._job(job_name)
        entry = job.doc.get("_Bookmark")
        if not entry:
            raise EntityNotFound(f"Continuation for job {job_name} not found")
        return _bookmark_entry(job_name, entry)

    def reset_bookmark(self, job_name: str) -> dict[str, Any]:
        job = self._job(job_name)
        entry = job.doc.get("_Bookmark") or {}
        self.resources.update(states.JOB_KIND, job_name, lambda r: r.doc.pop("_Bookmark", None))
        return _bookmark_entry(job_name, {**entry, "State": {}})

    # --- restart safety ---------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> None:
        for res in self.resources.left_behind(states.RUN_KIND, states.ACTIVE, left_by):
            with contextlib.suppress(LeaseLost, NotFound):
                self.resources.update(states.RUN_KIND, res.name, lambda r: states.finish(
                    r, "STOPPED" if r.status == "STOPPING" else "FAILED",
                    None if r.status == "STOPPING" else SERVER_STOPPED), lease=res.lease)


def _bookmark_entry(job_name: str, entry: dict[str, Any]) -> dict[str, Any]:
    out = {"JobName": job_name, "Version": entry.get("Version", 0), "Run": entry.get("Run", 0),
           "Attempt": entry.get("Attempt", 0), "JobBookmark": json.dumps(entry.get("State") or {})}
    for key in ("PreviousRunId", "RunId"):
        if entry.get(key):
            out[key] = entry[key]
    return out


