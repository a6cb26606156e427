"""Training jobs: create, describe, list, stop, and settle what a stopped server left behind."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.arns import sagemaker_arn
from sagelab.compute.engine import Task, TaskState, TaskStatus
from sagelab.errors import ResourceInUse, ResourceNotFound, ValidationError
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, public
from sagelab.training import describe_defaults, states
from sagelab.training.spec import parse_training_job

if TYPE_CHECKING:
    from sagelab.platform import Platform

RUNNER = "sagelab.training.runner:run_training_job"
SERVER_STOPPED = ("sagelab server stopped while the job was running; the job was not resumed. "
                  "Create a new training job to run it again.")


class TrainingService:
    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def resources(self):
        return self.platform.resources

    # --- create -----------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str, tags: list[dict[str, str]] | None = None,
               tuning_job_arn: str | None = None) -> str:
        """Start a training job; `tuning_job_arn` marks it as a trial of that hyperparameter tuning job."""
        spec = parse_training_job(params, self.platform.algorithms)
        job_arn = sagemaker_arn(region, self.platform.account_id, "training-job", spec.name)
        now = time.time()
        algo_spec = dict(params["AlgorithmSpecification"])
        algo_spec["MetricDefinitions"] = [{"Name": m.name, "Regex": m.regex} for m in spec.metric_definitions]
        algo_spec.setdefault("EnableSageMakerMetricsTimeSeries", False)
        doc: dict[str, Any] = {
            "TrainingJobName": spec.name,
            "TrainingJobArn": job_arn,
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": spec.raw_hyperparameters,
            "AlgorithmSpecification": algo_spec,
            "RoleArn": params.get("RoleArn"),
            "InputDataConfig": describe_defaults.input_data_config(params.get("InputDataConfig")),
            "OutputDataConfig": describe_defaults.output_data_config(params["OutputDataConfig"]),
            "ResourceConfig": describe_defaults.resource_config(params.get("ResourceConfig")),
            "StoppingCondition": describe_defaults.stopping_condition(params.get("StoppingCondition"),
                                                                      spec.max_runtime),
            "CreationTime": now,
            "LastModifiedTime": now,
            "SecondaryStatusTransitions": [states.new_transition("Starting", now)],
            "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(params.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(params.get("EnableManagedSpotTraining", False)),
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "_Request": params,
        }
        if tuning_job_arn:
            doc["TuningJobArn"] = tuning_job_arn
        for optional in ("Environment", "VpcConfig", "CheckpointConfig", "RetryStrategy", "ExperimentConfig",
                         "DebugHookConfig", "TensorBoardOutputConfig", "ProfilerConfig"):
            if params.get(optional) is not None:
                doc[optional] = params[optional]
        lease = uuid.uuid4().hex
        try:
            self.resources.insert(states.KIND, spec.name, job_arn, "InProgress", doc, created_at=now, lease=lease)
        except AlreadyExists:
            raise ResourceInUse(f"Training job names must be unique within an AWS account and region, and a "
                                f"training job with this name already exists ({job_arn}).") from None
        if tags:
            self.resources.put_tags(job_arn, {t["Key"]: t.get("Value", "") for t in tags})
        self._submit(spec.name, lease, spec.max_runtime)
        return job_arn

    def log_path(self, name: str) -> Path:
        return job_log_path(self.platform.logs_dir, name)

    def _submit(self, name: str, lease: str, max_runtime: int) -> None:
        task = Task(id=f"training-job/{name}/{lease}", target=RUNNER,
                    args={"settings": self.platform.settings.to_dict(), "job_name": name, "lease": lease},
                    log_path=self.log_path(name), timeout=float(max_runtime))
        self.platform.engine.submit(task, self._on_task_done)

    # --- the engine reports a finished task -------------------------------------------------------
    def _on_task_done(self, task: Task, status: TaskStatus) -> None:
        name, lease = task.args["job_name"], task.args["lease"]

        def settle(res: Resource) -> None:
            if res.status not in states.ACTIVE:
                return
            if status.state is TaskState.TIMED_OUT:
                states.finish(res, "Stopped", "MaxRuntimeExceeded")
            elif status.state is TaskState.STOPPED or res.status == "Stopping":
                states.finish(res, "Stopped", "Stopped")
            elif status.state is TaskState.FAILED:
                states.finish(res, "Failed", "Failed", reason=status.error or "AlgorithmError: unknown failure")
            else:  # the process ended without completing the job
                states.finish(res, "Failed", "Failed", reason="AlgorithmError: the training process exited "
                              "without producing a model.")

        # A lost lease or a deleted job means someone else has settled it already.
        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(states.KIND, name, settle, lease=lease)

    # --- read ---------------------------------------------------------------------------------------
    def get(self, name: str) -> Resource:
        res = self.resources.get(states.KIND, name)
        if res is None:
            raise ValidationError(f"Requested resource not found: training job {name!r} does not exist.")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(states.KIND, params)
        summaries = []
        for res in rows:
            doc = res.doc
            summary = {"TrainingJobName": res.name, "TrainingJobArn": res.arn, "CreationTime": res.created_at,
                       "LastModifiedTime": res.modified_at, "TrainingJobStatus": res.status,
                       "SecondaryStatus": doc.get("SecondaryStatus")}
            if "TrainingEndTime" in doc:
                summary["TrainingEndTime"] = doc["TrainingEndTime"]
            summaries.append(summary)
        return summaries

    def logs(self, name: str) -> str:
        self.get(name)
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    # --- stop ----------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        res = self.resources.get(states.KIND, name)
        if res is None:
            raise ResourceNotFound(f"Training job {name!r} does not exist.")
        if res.status != "InProgress":
            raise ValidationError(f"The training job {name!r} is {res.status}; only InProgress jobs can be stopped.")
        lease = res.lease

        def stopping(r: Resource) -> None:
            r.status = "Stopping"
            r.doc["TrainingJobStatus"] = "Stopping"
            states.set_secondary(r.doc, "Stopping")

        self.resources.update(states.KIND, name, stopping)
        try:
            self.platform.engine.stop(f"training-job/{name}/{lease}")
        except KeyError:
            # Not this server's task (e.g. submitted before a restart): settle it here.
            self.resources.update(states.KIND, name, lambda r: states.finish(r, "Stopped", "Stopped"))

    # --- restart safety -------------------------------------------------------------------------------
    def recover(self) -> int:
        """Settle jobs a previous server left active: they cannot be resumed, so they end now."""
        settled = 0
        for res in self.resources.in_status(states.KIND, states.ACTIVE):
            def settle(r: Resource) -> None:
                if r.status == "Stopping":
                    states.finish(r, "Stopped", "Stopped")
                elif r.status == "InProgress":
                    states.finish(r, "Failed", "Failed", reason=SERVER_STOPPED)

            try:
                self.resources.update(states.KIND, res.name, settle)
                settled += 1
            except NotFound:
                continue
        return settled


def job_log_path(logs_dir: Path, name: str) -> Path:
    return logs_dir / "TrainingJobs" / f"{name}.log"


