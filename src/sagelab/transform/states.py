"""The transform job state machine, applied to the job's Describe document.

TransformJobStatus: InProgress -> Completed | Failed | Stopping -> Stopped. A job has no secondary status;
TransformStartTime is set when its process starts and TransformEndTime when it reaches a final status.
"""

from __future__ import annotations

import time

from sagelab.storage.resources import Resource

KIND = "transform-job"


def set_status(res: Resource, status: str) -> None:
    res.status = status
    res.doc["TransformJobStatus"] = status


def start(res: Resource) -> None:
    """The job's process has started working."""
    res.doc["TransformStartTime"] = time.time()


def finish(res: Resource, status: str, *, reason: str | None = None) -> None:
    """Move a job to a final status, stamp its end time and release its lease."""
    set_status(res, status)
    res.doc["TransformEndTime"] = time.time()
    if reason:
        res.doc["FailureReason"] = reason[:1024]  # the API's limit for FailureReason
    res.lease = None
