"""Step retry policies (`RetryPolicies`): which failures a step is run again for, how often and when.

A policy names the fault classes it covers. sagelab's jobs fail for three kinds of reasons: the request
(`ClientError`), the user's code or data (`AlgorithmError`), and sagelab itself (anything else, such as a
job process that died); only the last is `SageMaker.JOB_INTERNAL_ERROR`. A create refused for a quota is
`SageMaker.RESOURCE_LIMIT`; an internal failure of a service call is `Step.SERVICE_FAULT`. sagelab has no
capacity errors and does not throttle, so `SageMaker.CAPACITY_ERROR` and `Step.THROTTLING` never match.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.errors import ValidationError

STEP_FAULTS = ("Step.SERVICE_FAULT", "Step.THROTTLING")
JOB_FAULTS = ("SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT")
JOB_STEP_TYPES = ("Processing", "Training", "Tuning", "Transform")
#: AWS's limits on a policy.
MAX_ATTEMPTS_CAP = 20
MAX_EXPIRE_AFTER_MIN = 14400


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    faults: frozenset[str]
    interval_seconds: float
    backoff_rate: float
    max_attempts: int | None
    expire_after_min: float | None

    def delay(self, retries_so_far: int) -> float:
        return self.interval_seconds * self.backoff_rate ** retries_so_far

    def allows(self, retries_so_far: int, *, started: float, now: float) -> bool:
        if self.max_attempts is not None:
            return retries_so_far < self.max_attempts
        return now - started < (self.expire_after_min or 0) * 60


def parse_policies(raw: Any, step_type: str, where: str) -> tuple[RetryPolicy, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(f"{where}: RetryPolicies must be a list.")
    allowed = STEP_FAULTS + (JOB_FAULTS if step_type in JOB_STEP_TYPES else ())
    policies = []
    for index, item in enumerate(raw):
        here = f"{where}: RetryPolicies[{index}]"
        faults = item.get("ExceptionType") or []
        unknown = [f for f in faults if f not in allowed]
        if not faults or unknown:
            raise ValidationError(f"{here}: ExceptionType must list some of {', '.join(allowed)} for a {step_type} "
                                  f"step; got {faults!r}.")
        attempts, expire = item.get("MaxAttempts"), item.get("ExpireAfterMin")
        if (attempts is None) == (expire is None):
            raise ValidationError(f"{here}: give exactly one of MaxAttempts and ExpireAfterMin.")
        if attempts is not None and not 1 <= int(attempts) <= MAX_ATTEMPTS_CAP:
            raise ValidationError(f"{here}: MaxAttempts must be 1 to {MAX_ATTEMPTS_CAP}; got {attempts}.")
        if expire is not None and not 0 <= float(expire) <= MAX_EXPIRE_AFTER_MIN:
            raise ValidationError(f"{here}: ExpireAfterMin must be 0 to {MAX_EXPIRE_AFTER_MIN}; got {expire}.")
        interval, backoff = float(item.get("IntervalSeconds", 1)), float(item.get("BackoffRate", 2.0))
        if interval < 0 or backoff < 0:
            raise ValidationError(f"{here}: IntervalSeconds and BackoffRate must not be negative.")
        policies.append(RetryPolicy(frozenset(faults), interval, backoff,
                                    int(attempts) if attempts is not None else None,
                                    float(expire) if expire is not None else None))
    return tuple(policies)


def job_fault(reason: str | None) -> str | None:
    """The fault class of a job that failed for this reason, if it is one a policy can cover."""
    if reason and not reason.startswith(("ClientError", "AlgorithmError")):
        return "SageMaker.JOB_INTERNAL_ERROR"
    return None


def call_fault(code: str) -> str | None:
    """The fault class of a service call refused with this error code."""
    return {"ResourceLimitExceeded": "SageMaker.RESOURCE_LIMIT", "InternalFailure": "Step.SERVICE_FAULT",
            "ThrottlingException": "Step.THROTTLING"}.get(code)


def policy_for(policies: tuple[RetryPolicy, ...], fault: str | None) -> RetryPolicy | None:
    return next((p for p in policies if fault in p.faults), None) if fault else None
