"""Processing jobs: the request, the Describe document, and how a processing job records its status.

The life cycle (start, settle, describe, list, stop, recover) is the one every SageMaker job shares
(`sagelab.jobs`); the work runs in `sagelab.processing.runner`.
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.compute.engine import Task, TaskStatus
from sagelab.jobs.kind import JobKind
from sagelab.jobs.service import JobService
from sagelab.processing import states
from sagelab.processing.spec import ProcessingJobSpec, parse_processing_job
from sagelab.storage.resources import Resource

SERVER_STOPPED = ("sagelab server stopped while the processing job was running; the job was not resumed. "
                  "Create a new processing job to run it again.")

PROCESSING_JOB = JobKind(
    resource=states.KIND, noun="processing job",
    name_field="ProcessingJobName", arn_field="ProcessingJobArn", status_field="ProcessingJobStatus",
    summary_fields=("ProcessingEndTime", "FailureReason", "ExitMessage"),
    runner="sagelab.processing.runner:run_processing_job", folder="ProcessingJobs",
    server_stopped=SERVER_STOPPED,
    failed_without_reason="InternalServerError: the processing process failed without a reason.",
    exited_early="InternalServerError: the processing process exited before it completed the job.",
)


class ProcessingService(JobService):
    kind = PROCESSING_JOB

    def create(self, params: dict[str, Any], *, region: str, tags: list[dict[str, str]] | None = None) -> str:
        spec = parse_processing_job(params)
        doc = describe_document(spec, params, self._arn(region, spec.name), time.time())
        return self._start(doc, tags=tags, timeout=float(spec.max_runtime))

    def _finish(self, res: Resource, status: str, *, reason: str | None = None) -> None:
        states.finish(res, status, reason=reason)

    def _mark_stopping(self, res: Resource) -> None:
        states.set_status(res, "Stopping")

    def _timed_out(self, res: Resource, task: Task, status: TaskStatus) -> None:
        limit = res.doc.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", task.timeout)
        self._finish(res, "Failed", reason=f"ClientError: the processing job ran longer than "
                     f"StoppingCondition.MaxRuntimeInSeconds ({limit} s) and was stopped.")


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
