"""SageMaker processing job operations, merged into the SageMaker face's handler table. Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.json_protocol import Handler
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


def processing_operations(platform: Platform) -> dict[str, Handler]:
    def create(params: dict[str, Any], request: Any) -> dict[str, Any]:
        arn = platform.processing.create(params, region=request.region, tags=params.get("Tags"))
        return {"ProcessingJobArn": arn}

    def list_jobs(params: dict[str, Any], request: Any) -> dict[str, Any]:
        items, more = page(platform.processing.list(params), params)
        return {"ProcessingJobSummaries": items, **more}

    return {
        "CreateProcessingJob": create,
        "DescribeProcessingJob": lambda p, r: platform.processing.describe(p["ProcessingJobName"]),
        "ListProcessingJobs": list_jobs,
        "StopProcessingJob": lambda p, r: platform.processing.stop(p["ProcessingJobName"]),
    }
