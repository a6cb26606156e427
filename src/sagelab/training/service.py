"""Training jobs: the request, the Describe document, and the secondary statuses only training jobs have.

The life cycle (start, settle, describe, list, stop, recover) is the one every SageMaker job shares
(`sagelab.jobs`); the work runs in `sagelab.training.runner`.
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.compute.engine import Task, TaskState, TaskStatus
from sagelab.jobs.kind import JobKind
from sagelab.jobs.service import JobService
from sagelab.storage.resources import Resource
from sagelab.training import describe_defaults, states
from sagelab.training.spec import parse_training_job

SERVER_STOPPED = ("sagelab server stopped while the job was running; the job was not resumed. "
                  "Create a new training job to run it again.")

TRAINING_JOB = JobKind(
    resource=states.KIND, noun="training job",
    name_field="TrainingJobName", arn_field="TrainingJobArn", status_field="TrainingJobStatus",
    # Every training job's document has a SecondaryStatus from its creation on.
    summary_fields=("SecondaryStatus", "TrainingEndTime"),
    runner="sagelab.training.runner:run_training_job", folder="TrainingJobs",
    server_stopped=SERVER_STOPPED,
    failed_without_reason="AlgorithmError: unknown failure",
    exited_early="AlgorithmError: the training process exited without producing a model.",
    not_found="Requested resource not found: training job {name!r} does not exist.",
    stop_while_stopping_succeeds=False,
)


class TrainingService(JobService):
    kind = TRAINING_JOB

    def __init__(self, *, algorithms: AlgorithmRegistry, **job_parts: Any):
        super().__init__(**job_parts)
        self.algorithms = algorithms

    # --- create -----------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str, tags: list[dict[str, str]] | None = None,
               tuning_job_arn: str | None = None) -> str:
        """Start a training job; `tuning_job_arn` marks it as a trial of that hyperparameter tuning job."""
        spec = parse_training_job(params, self.algorithms)
        job_arn = self._arn(region, spec.name)
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
        return self._start(doc, tags=tags, timeout=float(spec.max_runtime))

    # --- how a training job records its status --------------------------------------------------------
    def _finish(self, res: Resource, status: str, *, reason: str | None = None) -> None:
        states.finish(res, status, status, reason=reason)

    def _mark_stopping(self, res: Resource) -> None:
        res.status = "Stopping"
        res.doc["TrainingJobStatus"] = "Stopping"
        states.set_secondary(res.doc, "Stopping")

    def _settle_ended_task(self, res: Resource, task: Task, status: TaskStatus) -> None:
        # Running out of time stops a training job with SecondaryStatus MaxRuntimeExceeded (as on SageMaker),
        # even when a stop was already under way.
        if status.state is TaskState.TIMED_OUT:
            states.finish(res, "Stopped", "MaxRuntimeExceeded")
        else:
            super()._settle_ended_task(res, task, status)

    # --- read ------------------------------------------------------------------------------------------
    def logs(self, name: str) -> str:
        self.get(name)
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""
