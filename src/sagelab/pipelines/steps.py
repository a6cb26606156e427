"""What each step type runs, through the stage service that owns it, and how its outcome is read.

A job step (Processing, Training, Tuning, Transform) creates one job and is followed until the job ends;
its properties are the job's Describe answer. A Model or RegisterModel step creates its resource at once.
Condition and Fail steps are evaluated by the driver itself. Any other step type fails with a reason that
says sagelab does not run it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Protocol

from sagelab.hosting.models import ModelService
from sagelab.jobs.service import JobService
from sagelab.processing.service import ProcessingService
from sagelab.registry.packages import GROUP as PACKAGE_GROUP
from sagelab.registry.packages import ModelPackageService
from sagelab.training.service import TrainingService
from sagelab.transform.service import TransformService
from sagelab.tuning import states as tuning_states
from sagelab.tuning.service import TuningService

#: StepStatus of a step whose job is in each job status.
_JOB_STATUS = {"InProgress": "Executing", "Stopping": "Stopping", "Completed": "Succeeded", "Failed": "Failed",
               "Stopped": "Stopped"}


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    #: Executing, Stopping, Succeeded, Failed or Stopped.
    status: str
    failure_reason: str | None
    properties: dict[str, Any]
    #: The job failed only because the server stopped under it: run the step again.
    interrupted: bool = False


class JobStep(Protocol):
    metadata_key: str
    #: Longest job name the service accepts.
    name_limit: int

    def start(self, name: str, request: dict[str, Any], *, region: str) -> str: ...

    def look(self, name: str) -> JobOutcome | None: ...

    def stop(self, name: str) -> None: ...


class _ServiceJobStep:
    """A step that runs one job of a `JobService` (processing, training, transform)."""

    def __init__(self, service: JobService, metadata_key: str):
        self.service = service
        self.metadata_key = metadata_key
        self.name_limit = 63

    def start(self, name: str, request: dict[str, Any], *, region: str) -> str:
        kind = self.service.kind
        return self.service.create({**request, kind.name_field: name}, region=region,  # type: ignore[attr-defined]
                                   tags=request.get("Tags"))

    def look(self, name: str) -> JobOutcome | None:
        res = self.service.resources.get(self.service.kind.resource, name)
        if res is None:
            return None
        reason = res.doc.get("FailureReason")
        return JobOutcome(status=_JOB_STATUS.get(res.status, "Executing"), failure_reason=reason,
                          properties={k: v for k, v in res.doc.items() if not k.startswith("_")},
                          interrupted=res.status == "Failed" and reason == self.service.kind.server_stopped)

    def stop(self, name: str) -> None:
        self.service.stop(name)


class _TuningStep:
    metadata_key = "TuningJob"
    name_limit = 32

    def __init__(self, tuning: TuningService):
        self.tuning = tuning

    def start(self, name: str, request: dict[str, Any], *, region: str) -> str:
        return self.tuning.create({**request, "HyperParameterTuningJobName": name}, region=region)

    def look(self, name: str) -> JobOutcome | None:
        res = self.tuning.resources.get(tuning_states.KIND, name)
        if res is None:
            return None
        status = _JOB_STATUS.get(res.status, "Executing")
        props = self.tuning.describe(name)
        if status == "Succeeded":
            objective = (props["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {})
            order = "Descending" if objective.get("Type") == "Maximize" else "Ascending"
            # Best first, as TuningStep.get_top_model_s3_uri expects of TrainingJobSummaries[0].
            props["TrainingJobSummaries"] = self.tuning.list_training_jobs({
                "HyperParameterTuningJobName": name, "SortBy": "FinalObjectiveMetricValue", "SortOrder": order})
        return JobOutcome(status=status, failure_reason=res.doc.get("FailureReason"), properties=props)

    def stop(self, name: str) -> None:
        self.tuning.stop(name)


@dataclasses.dataclass
class StepServices:
    """The stage services a pipeline's steps run on."""

    processing: ProcessingService
    training: TrainingService
    tuning: TuningService
    transforms: TransformService
    models: ModelService
    model_packages: ModelPackageService

    def job_steps(self) -> dict[str, JobStep]:
        return {"Processing": _ServiceJobStep(self.processing, "ProcessingJob"),
                "Training": _ServiceJobStep(self.training, "TrainingJob"),
                "Transform": _ServiceJobStep(self.transforms, "TransformJob"),
                "Tuning": _TuningStep(self.tuning)}

    def create_model(self, name: str, request: dict[str, Any], *, region: str) -> tuple[str, dict[str, Any]]:
        arn = self.models.create({**request, "ModelName": name}, region=region)
        return arn, self.models.describe(name)

    def register_model(self, request: dict[str, Any], *, region: str) -> tuple[str, dict[str, Any]]:
        # The SDK writes SkipModelValidation "None" when not asked; it names no validation to skip.
        request = {k: v for k, v in request.items() if not (k == "SkipModelValidation" and v == "None")}
        group = request.get("ModelPackageGroupName")
        if group and not self.model_packages.resources.get(PACKAGE_GROUP, group.rsplit("/", 1)[-1]):
            # As on SageMaker: a RegisterModel step creates its model package group when there is none.
            self.model_packages.create_group({"ModelPackageGroupName": group.rsplit("/", 1)[-1]}, region=region)
        arn = self.model_packages.create(request, region=region)
        return arn, self.model_packages.describe(arn)


_UNSAFE = re.compile(r"[^a-zA-Z0-9]+")


def job_name(execution_id: str, step: str, attempt: int, unique: str, limit: int) -> str:
    """`pipelines-<execution>-<step>-<unique>` cut to the service's limit, in SageMaker's name pattern; lower
    case, as the name in the job's ARN is, so the name read back from the ARN in the step's metadata works."""
    tail = f"-{unique}" if attempt <= 1 else f"-{attempt}-{unique}"
    head = f"pipelines-{execution_id}-{_UNSAFE.sub('-', step).strip('-').lower()}"
    return (head[:limit - len(tail)].rstrip("-") + tail)[:limit]
