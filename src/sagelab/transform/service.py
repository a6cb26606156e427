"""Batch transform jobs: the request, the Describe document, and how a transform job records its status.

The life cycle (start, settle, describe, list, stop, recover) is the one every SageMaker job shares
(`sagelab.jobs`); the work runs in `sagelab.transform.runner`.
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.jobs.kind import JobKind
from sagelab.jobs.service import JobService
from sagelab.storage.resources import Resource
from sagelab.transform import states
from sagelab.transform.spec import ModelLookup, TransformJobSpec, parse_transform_job

SERVER_STOPPED = ("sagelab server stopped while the transform job was running; the job was not resumed. "
                  "Create a new transform job to run it again.")

TRANSFORM_JOB = JobKind(
    resource=states.KIND, noun="transform job",
    name_field="TransformJobName", arn_field="TransformJobArn", status_field="TransformJobStatus",
    summary_fields=("TransformEndTime", "FailureReason"),
    runner="sagelab.transform.runner:run_transform_job", folder="TransformJobs",
    server_stopped=SERVER_STOPPED,
    failed_without_reason="InternalServerError: the transform process failed without a reason.",
    exited_early="InternalServerError: the transform process exited before it completed the job.",
)


class TransformService(JobService):
    kind = TRANSFORM_JOB

    def __init__(self, *, models: ModelLookup, **job_parts: Any):
        super().__init__(**job_parts)
        self.models = models

    def create(self, params: dict[str, Any], *, region: str, tags: list[dict[str, str]] | None = None) -> str:
        spec = parse_transform_job(params, self.models)
        doc = describe_document(spec, params, self._arn(region, spec.name), time.time())
        return self._start(doc, tags=tags, timeout=None)

    def _finish(self, res: Resource, status: str, *, reason: str | None = None) -> None:
        states.finish(res, status, reason=reason)

    def _mark_stopping(self, res: Resource) -> None:
        states.set_status(res, "Stopping")


def describe_document(spec: TransformJobSpec, params: dict[str, Any], job_arn: str, now: float) -> dict[str, Any]:
    """DescribeTransformJob's answer for a new job: the request echoed with SageMaker's defaults filled in."""
    raw_input = params["TransformInput"]
    transform_input = {"DataSource": raw_input["DataSource"], "CompressionType": spec.input.compression,
                       "SplitType": spec.input.split_type}
    if raw_input.get("ContentType"):
        transform_input["ContentType"] = raw_input["ContentType"]
    transform_output = {**params["TransformOutput"], "AssembleWith": spec.output.assemble_with}
    data_processing = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None",
                       **(params.get("DataProcessing") or {})}
    doc: dict[str, Any] = {
        "TransformJobName": spec.name,
        "TransformJobArn": job_arn,
        "TransformJobStatus": "InProgress",
        "ModelName": spec.model_name,
        "MaxConcurrentTransforms": spec.max_concurrent,
        "MaxPayloadInMB": spec.max_payload_mb,
        "BatchStrategy": spec.batch_strategy,
        "Environment": spec.environment,
        "TransformInput": transform_input,
        "TransformOutput": transform_output,
        "TransformResources": params["TransformResources"],
        "CreationTime": now,
        "DataProcessing": data_processing,
        "_Request": params,
    }
    for optional in ("ModelClientConfig", "DataCaptureConfig", "ExperimentConfig"):
        if params.get(optional) is not None:
            doc[optional] = params[optional]
    return doc
