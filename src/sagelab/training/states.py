"""The training job state machine, applied to the job's Describe document.

TrainingJobStatus: InProgress -> Completed | Failed | Stopping -> Stopped.
SecondaryStatus follows SageMaker: Starting -> Downloading -> Training -> Uploading -> Completed, or
Stopping -> Stopped / MaxRuntimeExceeded, or Failed. A managed spot job may also go Interrupted -> Starting (a new
attempt, restored from its checkpoints) or stop with MaxWaitTimeExceeded. Every change closes the open SecondaryStatusTransition.
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.storage.resources import Resource

KIND = "training-job"

MESSAGES = {
    "Starting": "Launching requested ML instances",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it ran longer than StoppingCondition.MaxRuntimeInSeconds",
    "Failed": "Training job failed",
    "Interrupted": "The job was interrupted: its spot capacity was reclaimed",
    "MaxWaitTimeExceeded": "Training job stopped: it waited longer than StoppingCondition.MaxWaitTimeInSeconds",
}


def new_transition(status: str, now: float, message: str | None = None) -> dict[str, Any]:
    return {"Status": status, "StartTime": now, "StatusMessage": message or MESSAGES.get(status, status)}


def set_secondary(doc: dict[str, Any], status: str, now: float | None = None, message: str | None = None) -> None:
    now = time.time() if now is None else now
    transitions = doc.setdefault("SecondaryStatusTransitions", [])
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    transitions.append(new_transition(status, now, message))
    doc["SecondaryStatus"] = status
    doc["LastModifiedTime"] = now


def finish(res: Resource, status: str, secondary: str, *, reason: str | None = None) -> None:
    """Move a job to a terminal status and fill the end-of-job times."""
    now = time.time()
    doc = res.doc
    set_secondary(doc, secondary, now, reason if secondary == "Failed" and reason else None)
    doc["SecondaryStatusTransitions"][-1]["EndTime"] = now
    doc["TrainingJobStatus"] = status
    doc["TrainingEndTime"] = now
    start = doc.get("TrainingStartTime")
    if start is not None:
        # Training time spans every attempt of a spot job, the restarts between them included; billable
        # time counts only the last attempt's (the work that was kept), so a resumed job bills less.
        seconds = max(1, int(round(now - start)))
        doc["TrainingTimeInSeconds"] = seconds
        doc["BillableTimeInSeconds"] = min(seconds, max(1, int(round(now - doc.get("_AttemptStartTime", start)))))
    if reason:
        doc["FailureReason"] = reason
    res.status = status
    res.lease = None
