"""SageMaker processing job operations, part of the SageMaker face's operation table. Translation only."""

from __future__ import annotations

from typing import Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.api.operations import SAGEMAKER, Operation, PlatformFace
from sagelab.pagination import page

op = SAGEMAKER.op
JOB = "processing-job/{ProcessingJobName}"


def create_processing_job(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    arn = face.platform.processing.create(params, region=request.region, tags=params.get("Tags"))
    return {"ProcessingJobArn": arn}


def list_processing_jobs(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(face.platform.processing.list(params), params)
    return {"ProcessingJobSummaries": items, **more}


PROCESSING_OPERATIONS: tuple[Operation[Handler], ...] = (
    op("CreateProcessingJob", create_processing_job, JOB),
    op("DescribeProcessingJob", lambda face, p, r: face.platform.processing.describe(p["ProcessingJobName"]),
       JOB, read_only=True),
    op("ListProcessingJobs", list_processing_jobs, read_only=True),
    op("StopProcessingJob", lambda face, p, r: face.platform.processing.stop(p["ProcessingJobName"]), JOB),
)
