"""Job run states (JobRunState): STARTING -> RUNNING -> SUCCEEDED | FAILED | TIMEOUT | STOPPED, via STOPPING."""

from __future__ import annotations

import time
from typing import Any

from sagelab.storage.resources import Resource

JOB_KIND = "glue-job"
RUN_KIND = "glue-job-run"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")
LOG_GROUP = "/aws-glue/python-jobs"
SPARK_LOG_GROUP = "/aws-glue/jobs"


def finish(res: Resource, state: str, error: str | None = None) -> None:
    now = time.time()
    doc: dict[str, Any] = res.doc
    doc["JobRunState"] = state
    doc["CompletedOn"] = now
    doc["LastModifiedOn"] = now
    started = doc.get("_RunningSince") or doc.get("StartedOn") or now
    doc["ExecutionTime"] = max(0, int(round(now - started)))
    if error:
        doc["ErrorMessage"] = error
    res.status = state
    res.lease = None
