"""Pipeline and execution documents: their kinds, statuses, and the record kept per step.

PipelineExecutionStatus: Executing -> Succeeded | Failed | Stopping -> Stopped. StepStatus: Executing ->
Succeeded | Failed | Stopping -> Stopped (Starting is never shown: a step's job exists once it is listed).
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.storage.resources import Resource

PIPELINE = "pipeline"
EXECUTION = "pipeline-execution"
ACTIVE = ("Executing", "Stopping")
FINISHED = ("Succeeded", "Failed", "Stopped")
STEP_FINISHED = ("Succeeded", "Failed", "Stopped")


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def finish(res: Resource, status: str, *, reason: str | None = None) -> None:
    now = time.time()
    res.status = status
    res.lease = None
    res.doc["PipelineExecutionStatus"] = status
    res.doc["LastModifiedTime"] = now
    if reason:
        res.doc["FailureReason"] = reason[:3072]
    else:
        res.doc.pop("FailureReason", None)


def step_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A PipelineExecutionStep: the record without sagelab's private fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
