"""The processing job state machine, applied to the job's Describe document.

ProcessingJobStatus: InProgress -> Completed | Failed | Stopping -> Stopped. ProcessingStartTime is set when
the job's process starts working, ProcessingEndTime when the job reaches a final status.
"""

from __future__ import annotations

import time

from sagelab.storage.resources import Resource

KIND = "processing-job"
#: The API's limit for FailureReason and ExitMessage.
MESSAGE_LIMIT = 1024


def set_status(res: Resource, status: str) -> None:
    res.status = status
    res.doc["ProcessingJobStatus"] = status
    res.doc["LastModifiedTime"] = time.time()


def start(res: Resource) -> None:
    res.doc["ProcessingStartTime"] = res.doc["LastModifiedTime"] = time.time()


def clip(text: str) -> str:
    """Keep the end of a long message: with a stderr tail, the last lines say the most."""
    return text if len(text) <= MESSAGE_LIMIT else "..." + text[-(MESSAGE_LIMIT - 3):]


def finish(res: Resource, status: str, *, reason: str | None = None, exit_message: str | None = None) -> None:
    """Move a job to a final status, stamp its end time and release its lease."""
    set_status(res, status)
    res.doc["ProcessingEndTime"] = res.doc["LastModifiedTime"]
    if reason:
        res.doc["FailureReason"] = clip(reason)
    if exit_message:
        res.doc["ExitMessage"] = clip(exit_message)
    res.lease = None
