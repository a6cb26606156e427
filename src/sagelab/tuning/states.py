"""The tuning job's state: its trials as the driver last saw them, and what Describe derives from them.

HyperParameterTuningJobStatus: InProgress -> Completed | Failed | Stopping -> Stopped. The driver is the only
writer of the trial list (`_Trials` in the job's document); counters, the best training job and the
completion details are recomputed from it on every save, so they can never disagree with each other.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sagelab.storage.resources import Resource
from sagelab.tuning.spec import Objective

KIND = "hyper-parameter-tuning-job"
ACTIVE = ("InProgress", "Stopping")
TRAINING_FINISHED = ("Completed", "Failed", "Stopped")
#: An improvement of the best objective by this fraction or less does not count as improving (AWS's 1 %).
IMPROVEMENT = 0.01


@dataclasses.dataclass
class Trial:
    """One training job a tuning job launched, with what tuning knows about it."""

    name: str
    arn: str
    definition: str | None
    tuned: dict[str, str]
    created: float
    status: str = "InProgress"
    objective: float | None = None
    objective_status: str = "Pending"  # Pending | Succeeded | Failed
    failure_reason: str | None = None
    #: Failed for a reason of sagelab's (not the algorithm's or the data's): relaunched, not counted as used.
    retryable: bool = False
    early_stopped: bool = False
    started: float | None = None
    ended: float | None = None
    #: The order in which trials were settled, to tell when the objective stopped improving.
    settled: int | None = None

    @property
    def finished(self) -> bool:
        return self.settled is not None

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Trial:
        return cls(**doc)

    def summary(self, tuning_job: str, objective: Objective | None) -> dict[str, Any]:
        """A HyperParameterTrainingJobSummary."""
        out: dict[str, Any] = {"TrainingJobName": self.name, "TrainingJobArn": self.arn, "TuningJobName": tuning_job,
                               "CreationTime": self.created, "TrainingJobStatus": self.status,
                               "TunedHyperParameters": dict(self.tuned), "ObjectiveStatus": self.objective_status}
        if self.definition:
            out["TrainingJobDefinitionName"] = self.definition
        if self.started is not None:
            out["TrainingStartTime"] = self.started
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason[:1024]
        if self.objective is not None and objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective.type, "MetricName": objective.metric, "Value": self.objective}
        return out


def status_counters(trials: Iterable[Trial]) -> tuple[dict[str, int], dict[str, int]]:
    """(TrainingJobStatusCounters, ObjectiveStatusCounters)."""
    training = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for trial in trials:
        if trial.status == "Failed":
            training["RetryableError" if trial.retryable else "NonRetryableError"] += 1
        elif trial.status in ("InProgress", "Stopping"):
            training["InProgress"] += 1
        else:
            training[trial.status] += 1
        objective[trial.objective_status] += 1
    return training, objective


def better(value: float, than: float, objective_type: str) -> bool:
    """Whether `value` beats `than` for an objective of this type (a tie does not)."""
    return value > than if objective_type == "Maximize" else value < than


def better_job(candidate: dict[str, Any], than: dict[str, Any], objective_type: str) -> bool:
    """The same, between two BestTrainingJob summaries (as a tuning job and its warm-start parents hold them)."""
    return better(candidate["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                  than["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], objective_type)


def best_trial(trials: Iterable[Trial], objective_type: str) -> Trial | None:
    """The completed trial with the best objective (trials stopped early have no model to use)."""
    candidates = [t for t in trials if t.status == "Completed" and t.objective_status == "Succeeded"
                  and t.objective is not None]
    if not candidates:
        return None
    pick = max if objective_type == "Maximize" else min
    return pick(candidates, key=lambda t: t.objective)


def not_improving(trials: Sequence[Trial], objective_type: str) -> int:
    """How many of the latest evaluated trials did not improve the best objective by more than 1 %."""
    evaluated = sorted((t for t in trials if t.objective_status == "Succeeded" and t.objective is not None),
                       key=lambda t: t.settled or 0)
    best: float | None = None
    streak = 0
    for trial in evaluated:
        value = float(trial.objective)  # type: ignore[arg-type]
        gain = (value - best if objective_type == "Maximize" else best - value) if best is not None else None
        if gain is None or gain > IMPROVEMENT * max(abs(best or 0.0), 1e-12):
            streak = 0
        else:
            streak += 1
        if best is None or better(value, best, objective_type):
            best = value
    return streak


def finish(res: Resource, status: str, *, reason: str | None = None, now: float | None = None) -> None:
    now = time.time() if now is None else now
    doc = res.doc
    doc["HyperParameterTuningJobStatus"] = status
    doc["HyperParameterTuningEndTime"] = now
    doc["LastModifiedTime"] = now
    doc["ConsumedResources"] = {"RuntimeInSeconds": max(0, int(round(now - res.created_at)))}
    if reason:
        doc["FailureReason"] = reason[:1024]
    res.status = status
    res.lease = None
