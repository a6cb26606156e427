"""Training jobs: the request, the Describe document, and the secondary statuses only training jobs have.

The life cycle (start, settle, describe, list, stop, recover) is the one every SageMaker job shares
(`sagelab.jobs`); the work runs in `sagelab.training.runner`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.compute.engine import Task, TaskState, TaskStatus
from sagelab.jobs.kind import JobKind
from sagelab.jobs.service import JobService
from sagelab.storage.resources import LeaseLost, NotFound, Resource
from sagelab.training import describe_defaults, spot, states
from sagelab.training.spec import parse_training_job

#: Private field: which limit the current attempt's task timeout stands for.
ATTEMPT_LIMIT = "_AttemptLimit"
#: Private field: how many times the job's RetryStrategy has retried it.
RETRIES = "_Retries"

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
        #: Spot jobs `recover` restarts: (name, new lease, timeout), submitted once they are recorded.
        self._resumed_on_recover: list[tuple[str, str, float]] = []
        #: Set while the server shuts down: the tasks it ends then are not the jobs' end.
        self._closing = False

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
        doc[spot.ATTEMPT] = 1
        doc[ATTEMPT_LIMIT] = "MaxRuntimeExceeded"
        return self._start(doc, tags=tags, timeout=float(spec.max_runtime))

    # --- managed spot training: interruptions and restarts ----------------------------------------------
    def close(self) -> None:
        """The server is shutting down: spot jobs that keep checkpoints stay InProgress, for the next server
        to resume (`recover`), instead of being settled as stopped when their tasks are ended."""
        self._closing = True

    @staticmethod
    def _resumable(res: Resource) -> bool:
        return (res.status == "InProgress" and bool(res.doc.get("EnableManagedSpotTraining"))
                and bool(res.doc.get("CheckpointConfig")))

    def _on_task_done(self, task: Task, status: TaskStatus) -> None:
        if self._closing:
            current = self.resources.get(self.kind.resource, task.args["job_name"])
            if current is not None and current.lease == task.args["lease"] and self._resumable(current):
                return
        restart: list[float] = []

        def resume(res: Resource) -> None:
            if res.status == "InProgress" and res.doc.get(spot.INTERRUPTED):
                timeout = self._restart(res, f"restarting after: {res.doc[spot.INTERRUPTED]}")
                if timeout is not None:
                    restart.append(timeout)

        with contextlib.suppress(LeaseLost, NotFound):
            res = self.resources.update(self.kind.resource, task.args["job_name"], resume, lease=task.args["lease"])
            if restart:
                self._submit(res.name, res.lease or "", restart[0])
                return
        super()._on_task_done(task, status)

    def _restart(self, res: Resource, why: str) -> float | None:
        """Record a new attempt of a spot job under a new lease (so the old process can no longer write);
        returns its task's timeout, or None when MaxWaitTimeInSeconds has run out and the job stopped."""
        doc = res.doc
        doc.pop(spot.INTERRUPTED, None)
        doc.pop(spot.REQUESTED, None)
        stopping = doc.get("StoppingCondition") or {}
        max_runtime = float(stopping.get("MaxRuntimeInSeconds") or describe_defaults.DEFAULT_MAX_RUNTIME)
        waited = time.time() - float(doc["CreationTime"])
        left = float(stopping.get("MaxWaitTimeInSeconds") or max_runtime) - waited
        if left <= 0:
            states.finish(res, "Stopped", "MaxWaitTimeExceeded")
            return None
        doc[spot.ATTEMPT] = int(doc.get(spot.ATTEMPT, 1)) + 1
        doc[ATTEMPT_LIMIT] = "MaxRuntimeExceeded" if max_runtime <= left else "MaxWaitTimeExceeded"
        states.set_secondary(doc, "Starting", message=f"{states.MESSAGES['Starting']} ({why})")
        res.lease = self.resources.new_lease()
        return min(max_runtime, left)

    def _settle_left_behind(self, res: Resource) -> None:
        # A spot job that keeps checkpoints resumes after a server restart, as after any interruption.
        if self._resumable(res):
            states.set_secondary(res.doc, "Interrupted", message=f"{states.MESSAGES['Interrupted']} (the sagelab "
                                                                 "server stopped while the job ran)")
            timeout = self._restart(res, "the sagelab server restarted")
            if timeout is not None:
                self._resumed_on_recover.append((res.name, res.lease or "", timeout))
            return
        # The server dying is SageMaker's InternalServerError, which a job's RetryStrategy retries.
        if res.status == "InProgress" and self._retries_left(res):
            self._resumed_on_recover.append((res.name, *self._retry(res)))
            return
        super()._settle_left_behind(res)

    @staticmethod
    def _retries_left(res: Resource) -> bool:
        allowed = int((res.doc.get("RetryStrategy") or {}).get("MaximumRetryAttempts") or 0)
        return int(res.doc.get(RETRIES, 0)) < allowed

    def _retry(self, res: Resource) -> tuple[str, float]:
        """Record the next attempt of a job under a new lease; returns the lease and the attempt's timeout
        (a full MaxRuntimeInSeconds: each attempt gets its own, as on SageMaker)."""
        doc = res.doc
        doc[RETRIES] = int(doc.get(RETRIES, 0)) + 1
        doc[spot.ATTEMPT] = int(doc.get(spot.ATTEMPT, 1)) + 1
        doc[ATTEMPT_LIMIT] = "MaxRuntimeExceeded"
        states.set_secondary(doc, "Starting", message=f"{states.MESSAGES['Starting']} (retry {doc[RETRIES]} of "
                             "the RetryStrategy: the sagelab server running the job stopped)")
        res.lease = self.resources.new_lease()
        stopping = doc.get("StoppingCondition") or {}
        return res.lease, float(stopping.get("MaxRuntimeInSeconds") or describe_defaults.DEFAULT_MAX_RUNTIME)

    def recover(self, left_by: str | None = None) -> int:
        self._resumed_on_recover = []
        settled = super().recover(left_by)
        for name, lease, timeout in self._resumed_on_recover:
            self._submit(name, lease, timeout)
        return settled

    # --- how a training job records its status --------------------------------------------------------
    def _finish(self, res: Resource, status: str, *, reason: str | None = None) -> None:
        states.finish(res, status, status, reason=reason)

    def _mark_stopping(self, res: Resource) -> None:
        res.status = "Stopping"
        res.doc["TrainingJobStatus"] = "Stopping"
        states.set_secondary(res.doc, "Stopping")

    def _settle_ended_task(self, res: Resource, task: Task, status: TaskStatus) -> None:
        # Running out of time stops a training job with SecondaryStatus MaxRuntimeExceeded (as on SageMaker),
        # or MaxWaitTimeExceeded when a spot job's restart had less time left than its runtime limit, even when
        # a stop was already under way.
        if status.state is TaskState.TIMED_OUT:
            states.finish(res, "Stopped", res.doc.get(ATTEMPT_LIMIT, "MaxRuntimeExceeded"))
        else:
            super()._settle_ended_task(res, task, status)

    # --- read ------------------------------------------------------------------------------------------
    def logs(self, name: str) -> str:
        self.get(name)
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""
