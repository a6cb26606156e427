"""SageMaker's hyperparameter tuning operations, part of the SageMaker face's operation table."""

from __future__ import annotations

from typing import Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.api.operations import SAGEMAKER, Operation, PlatformFace
from sagelab.pagination import page

op = SAGEMAKER.op
JOB = "hyper-parameter-tuning-job/{HyperParameterTuningJobName}"


def create_tuning_job(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    return {"HyperParameterTuningJobArn": face.platform.tuning.create(params, region=request.region)}


def describe_tuning_job(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    return face.platform.tuning.describe(params["HyperParameterTuningJobName"])


def list_tuning_jobs(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(face.platform.tuning.list(params), params)
    return {"HyperParameterTuningJobSummaries": items, **more}


def list_training_jobs_for_tuning_job(face: PlatformFace, params: dict[str, Any],
                                      request: Request) -> dict[str, Any]:
    items, more = page(face.platform.tuning.list_training_jobs(params), params)
    return {"TrainingJobSummaries": items, **more}


def stop_tuning_job(face: PlatformFace, params: dict[str, Any], request: Request) -> None:
    face.platform.tuning.stop(params["HyperParameterTuningJobName"])


TUNING_OPERATIONS: tuple[Operation[Handler], ...] = (
    op("CreateHyperParameterTuningJob", create_tuning_job, JOB),
    op("DescribeHyperParameterTuningJob", describe_tuning_job, JOB, read_only=True),
    op("ListHyperParameterTuningJobs", list_tuning_jobs, read_only=True),
    # A List* that is scoped: it lists the training jobs of one tuning job, which IAM checks.
    op("ListTrainingJobsForHyperParameterTuningJob", list_training_jobs_for_tuning_job, JOB, read_only=True),
    op("StopHyperParameterTuningJob", stop_tuning_job, JOB),
)
