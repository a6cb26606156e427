"""Metrics come from the job log, extracted by MetricDefinition regexes as SageMaker does.

CloudWatch shows a tab as `#011`, so regexes written for AWS (`...#011validation-auc:...`) match too.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from typing import Any

from sagelab.algorithms.base import MetricDefinition


def extract_metrics(lines: Iterable[str], definitions: Iterable[MetricDefinition]) -> dict[str, float]:
    """The last value each metric took in the log."""
    latest: dict[str, float] = {}
    for name, value in metric_series(lines, definitions):
        latest[name] = value
    return latest


def metric_series(lines: Iterable[str], definitions: Iterable[MetricDefinition]) -> list[tuple[str, float]]:
    """Every value a metric took in the log, in the order of the log's lines."""
    compiled = []
    for definition in definitions:
        try:
            compiled.append((definition.name, re.compile(definition.regex)))
        except re.error:
            continue
    found: list[tuple[str, float]] = []
    for line in lines:
        for name, regex in compiled:
            value = metric_value(line, regex)
            if value is not None:
                found.append((name, value))
    return found


#: Where SageMaker publishes training metrics in CloudWatch; each datum has the dimension Host=<job>/algo-1.
TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def cloudwatch_data(job_name: str, series: list[tuple[str, float]], start: float, end: float,
                    limit: int = 1000) -> list[dict[str, Any]]:
    """The metric values of a job as CloudWatch data. The log carries no times, so the values are spread
    evenly over the training phase, in the log's order, one second apart at least (high resolution)."""
    series = series[-limit:]
    step = (end - start) / max(1, len(series) - 1) if len(series) > 1 else 0.0
    host = [{"Name": "Host", "Value": f"{job_name}/algo-1"}]
    return [{"MetricName": name, "Dimensions": host, "Value": value, "StorageResolution": 1,
             "Timestamp": min(end, start + max(step, 1.0) * i)} for i, (name, value) in enumerate(series)]


def metric_value(line: str, regex: re.Pattern[str]) -> float | None:
    """The finite number a MetricDefinition regex captures in one log line, if any."""
    variants = (line, line.replace("\t", "#011")) if "\t" in line else (line,)
    for text in variants:
        match = regex.search(text)
        if match and match.groups():
            try:
                value = float(match.group(1))
            except (TypeError, ValueError):
                continue
            return value if math.isfinite(value) else None
    return None


def final_metric_list(values: dict[str, float], when: float | None = None) -> list[dict[str, Any]]:
    when = time.time() if when is None else when
    return [{"MetricName": name, "Value": value, "Timestamp": when} for name, value in sorted(values.items())]
