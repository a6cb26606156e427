"""Processing jobs: create, describe, list, stop, and settle what a stopped server left behind.

A job is a resource document with a lease; its work is one task on the compute engine
(`sagelab.processing.runner`), which reports progress fenced by the lease. The engine's end-of-task report
settles jobs that did not complete themselves (failed, stopped, timed out or killed).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.arns import sagemaker_arn
from sagelab.compute.engine import Task, TaskState, TaskStatus
from sagelab.errors import ResourceInUse, ResourceNotFound, ValidationError
from sagelab.processing import states
from sagelab.processing.spec import ProcessingJobSpec, parse_processing_job
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, public

if TYPE_CHECKING:
    from sagelab.platform import Platform

RUNNER = "sagelab.processing.runner:run_processing_job"
SERVER_STOPPED = ("sagelab server stopped while the processing job was running; the job was not resumed. "
                  "Create a new processing job to run it again.")


def job_log_path(logs_dir: Path, name: str) -> Path:
    return logs_dir / "ProcessingJobs" / f"{name}.log"


def task_id(name: str, lease: str) -> str:
    return f"processing-job/{name}/{lease}"


class ProcessingService:
    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def resources(self):
        return self.platform.resources

    # --- create -----------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str, tags: list[dict[str, str]] | None = None) -> str:
        spec = parse_processing_job(params)
        job_arn = sagemaker_arn(region, self.platform.account_id, "processing-job", spec.name)
        doc = describe_document(spec, params, job_arn, time.time())
        lease = uuid.uuid4().hex
        try:
            self.resources.insert(states.KIND, spec.name, job_arn, "InProgress", doc,
                                  created_at=doc["CreationTime"], lease=lease)
        except AlreadyExists:
            raise ResourceInUse(f"Processing job names must be unique within an AWS account and region, and a "
                                f"processing job with this name already exists ({job_arn}).") from None
        if tags:
            self.resources.put_tags(job_arn, {t["Key"]: t.get("Value", "") for t in tags})
        task = Task(id=task_id(spec.name, lease), target=RUNNER,
                    args={"settings": self.platform.settings.to_dict(), "job_name": spec.name, "lease": lease},
                    log_path=self.log_path(spec.name), timeout=float(spec.max_runtime))
        self.platform.engine.submit(task, self._on_task_done)
        return job_arn

    def log_path(self, name: str) -> Path:
        return job_log_path(self.platform.logs_dir, name)

    # --- the engine reports a finished task -------------------------------------------------------
    def _on_task_done(self, task: Task, status: TaskStatus) -> None:
        name, lease = task.args["job_name"], task.args["lease"]

        def settle(res: Resource) -> None:
            if res.status not in states.ACTIVE:
                return
            if status.state is TaskState.STOPPED or res.status == "Stopping":
                states.finish(res, "Stopped")
            elif status.state is TaskState.TIMED_OUT:
                limit = res.doc.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", task.timeout)
                states.finish(res, "Failed", reason=f"ClientError: the processing job ran longer than "
                              f"StoppingCondition.MaxRuntimeInSeconds ({limit} s) and was stopped.")
            elif status.state is TaskState.FAILED:
                states.finish(res, "Failed", reason=status.error or "InternalServerError: the processing "
                              "process failed without a reason.")
            else:  # the process ended without completing the job
                states.finish(res, "Failed", reason="InternalServerError: the processing process exited "
                              "before it completed the job.")

        # A lost lease or a deleted job means someone else has settled it already.
        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(states.KIND, name, settle, lease=lease)

    # --- read ---------------------------------------------------------------------------------------
    def get(self, name: str) -> Resource:
        res = self.resources.get(states.KIND, name)
        if res is None:
            raise ValidationError(f"Could not find requested job with name {name}")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        summaries = []
        for res in self.resources.list_for_request(states.KIND, params):
            summary = {"ProcessingJobName": res.name, "ProcessingJobArn": res.arn, "CreationTime": res.created_at,
                       "LastModifiedTime": res.modified_at, "ProcessingJobStatus": res.status}
            for optional in ("ProcessingEndTime", "FailureReason", "ExitMessage"):
                if optional in res.doc:
                    summary[optional] = res.doc[optional]
            summaries.append(summary)
        return summaries

    # --- stop ----------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        res = self.resources.get(states.KIND, name)
        if res is None:
            raise ResourceNotFound(f"Processing job {name!r} does not exist.")
        if res.status == "Stopping":
            return
        if res.status != "InProgress":
            raise ValidationError(f"The processing job {name!r} is {res.status}; only InProgress jobs can be "
                                  "stopped.")
        lease = res.lease
        self.resources.update(states.KIND, name, lambda r: states.set_status(r, "Stopping"))
        try:
            self.platform.engine.stop(task_id(name, lease or ""))
        except KeyError:
            # Not this server's task (e.g. submitted before a restart): settle it here.
            self.resources.update(states.KIND, name, lambda r: states.finish(r, "Stopped"))

    # --- restart safety -------------------------------------------------------------------------------
    def recover(self) -> int:
        """Settle jobs a previous server left active: they cannot be resumed, so they end now."""
        settled = 0
        for res in self.resources.in_status(states.KIND, states.ACTIVE):
            def settle(r: Resource) -> None:
                if r.status == "Stopping":
                    states.finish(r, "Stopped")
                elif r.status == "InProgress":
                    states.finish(r, "Failed", reason=SERVER_STOPPED)

            try:
                self.resources.update(states.KIND, res.name, settle)
                settled += 1
            except NotFound:
                continue
        return settled


def describe_document(spec: ProcessingJobSpec, params: dict[str, Any], job_arn: str, now: float) -> dict[str, Any]:
    """DescribeProcessingJob's answer for a new job: the request echoed with SageMaker's defaults filled in."""
    inputs = []
    for item in params.get("ProcessingInputs") or []:
        source = {"S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                  "S3CompressionType": "None", **item["S3Input"]}
        inputs.append({**item, "AppManaged": bool(item.get("AppManaged", False)), "S3Input": source})
    doc: dict[str, Any] = {
        "ProcessingJobName": spec.name,
        "ProcessingJobArn": job_arn,
        "ProcessingJobStatus": "InProgress",
        "ProcessingInputs": inputs,
        "ProcessingResources": params["ProcessingResources"],
        "StoppingCondition": params.get("StoppingCondition") or {"MaxRuntimeInSeconds": spec.max_runtime},
        "AppSpecification": params["AppSpecification"],
        "CreationTime": now,
        "LastModifiedTime": now,
        "_Request": params,
    }
    for optional in ("ProcessingOutputConfig", "Environment", "NetworkConfig", "RoleArn", "ExperimentConfig"):
        if params.get(optional) is not None:
            doc[optional] = params[optional]
    return doc
