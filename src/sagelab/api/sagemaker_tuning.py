"""SageMaker's hyperparameter tuning operations, as handlers the SageMaker face merges into its table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


def tuning_handlers(platform: Platform) -> dict[str, Handler]:
    def create(params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"HyperParameterTuningJobArn": platform.tuning.create(params, region=request.region)}

    def describe(params: dict[str, Any], request: Request) -> dict[str, Any]:
        return platform.tuning.describe(params["HyperParameterTuningJobName"])

    def list_jobs(params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(platform.tuning.list(params), params)
        return {"HyperParameterTuningJobSummaries": items, **more}

    def list_training_jobs(params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(platform.tuning.list_training_jobs(params), params)
        return {"TrainingJobSummaries": items, **more}

    def stop(params: dict[str, Any], request: Request) -> None:
        platform.tuning.stop(params["HyperParameterTuningJobName"])

    return {
        "CreateHyperParameterTuningJob": create,
        "DescribeHyperParameterTuningJob": describe,
        "ListHyperParameterTuningJobs": list_jobs,
        "ListTrainingJobsForHyperParameterTuningJob": list_training_jobs,
        "StopHyperParameterTuningJob": stop,
    }
